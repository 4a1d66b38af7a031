// The webcam: a live preview, JPEG frames at a steady rate, and the picture's brightness.

/** Asks for the camera; rejects with the browser's error (its `name` says why). */
export function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    return Promise.reject(Object.assign(new Error('no camera API'), { name: 'NotSupportedError' }));
  }
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
    audio: false,
  });
}

/** What to tell a candidate whose camera could not be opened, by the browser's error name. */
export function cameraAdvice(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'The camera was blocked. Allow this site to use your camera (the camera icon in the address bar, or your browser\'s site settings), then press "Try again".';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. Connect a camera, then press "Try again".';
    case 'NotReadableError':
      return 'Your camera is in use by another program. Close it (for example a video call), then press "Try again".';
    default:
      return 'This browser cannot open a camera here. Use a current Chrome, Edge, Firefox or Safari, then open your invitation link again.';
  }
}

/** Captures frames from `video` at `fps` and hands each to `send` as a JPEG blob, with the
 * picture's mean brightness (0-255) to `onBrightness`. */
export class FrameSender {
  constructor(video, send, { fps = 5, width = 640, onBrightness } = {}) {
    this.video = video;
    this.send = send;
    this.fps = fps;
    this.width = width;
    this.onBrightness = onBrightness;
    this.canvas = document.createElement('canvas');
    this.small = document.createElement('canvas');
    this.small.width = 32;
    this.small.height = 24;
    this.timer = null;
    this.sent = 0;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.capture(), 1000 / this.fps);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  capture() {
    const { videoWidth: w, videoHeight: h } = this.video;
    if (!w || !h) return;
    const scale = Math.min(1, this.width / w);
    this.canvas.width = Math.round(w * scale);
    this.canvas.height = Math.round(h * scale);
    this.canvas.getContext('2d').drawImage(this.video, 0, 0, this.canvas.width, this.canvas.height);
    if (this.onBrightness) {
      const ctx = this.small.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(this.canvas, 0, 0, 32, 24);
      const pixels = ctx.getImageData(0, 0, 32, 24).data;
      let sum = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        sum += 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
      }
      this.onBrightness(sum / (pixels.length / 4));
    }
    this.canvas.toBlob((blob) => {
      if (blob && this.send(blob)) this.sent += 1;
    }, 'image/jpeg', 0.8);
  }

  /** The size of the frames sent, to read the server's face boxes against. */
  get frameSize() {
    return { width: this.canvas.width, height: this.canvas.height };
  }
}
