// The interview's WebSocket: JSON messages in and out, frames as binary JPEG, and reconnection
// with backoff when the connection drops (the server resumes where the candidate was).
import { socketUrl } from './api.js';

/** Events: `open`, `down` (reconnecting), and one per server message type (`status`, `question`,
 * `emotion_update`, `error`, `pong`) with the message's data as `detail`. */
export class Live extends EventTarget {
  constructor(interviewId, token) {
    super();
    this.url = socketUrl(`/ws/interviews/${encodeURIComponent(interviewId)}`);
    this.token = token;
    this.socket = null;
    this.attempt = 0;
    this.closed = false;
  }

  connect() {
    // Browsers cannot set headers on a WebSocket: the token travels as a subprotocol.
    const socket = new WebSocket(this.url, ['ai-interview', `bearer.${this.token}`]);
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.attempt = 0;
      this.dispatchEvent(new Event('open'));
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatchEvent(new CustomEvent(message.type, { detail: message.data ?? {} }));
    });
    socket.addEventListener('close', () => {
      if (this.closed || this.socket !== socket) return;
      // 0.5, 1, 2, 4, then every 8 s: quick after a blip, gentle on a server that is down.
      const delay = Math.min(500 * 2 ** this.attempt, 8000);
      this.attempt += 1;
      this.dispatchEvent(new CustomEvent('down', { detail: { retryInMs: delay } }));
      setTimeout(() => { if (!this.closed) this.connect(); }, delay);
    });
  }

  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends `{type, data}`; false when the socket is not open (the caller keeps what it sent). */
  send(type, data) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(data === undefined ? { type } : { type, data }));
    return true;
  }

  /** Sends one frame unless the socket is down or still busy with earlier ones (a slow link gets
   * fewer, fresher frames rather than a growing queue). */
  sendFrame(blob) {
    if (!this.open || this.socket.bufferedAmount > 256 * 1024) return false;
    this.socket.send(blob);
    return true;
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }
}
