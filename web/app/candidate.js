// The candidate's page, opened from the invitation link: welcome, the notice and consent (nothing
// is sent before it), the camera check (the backend's face detection), a practice question that
// does not count, the interview over the WebSocket, and completion with the candidate's rights.
import { download } from './api.js';
import { cameraAdvice, FrameSender, openCamera } from './camera.js';
import { alertBox, announce, field, fmt, h, show } from './dom.js';
import { Live } from './live.js';

/** What the welcome page promises per question: a typed answer of a few paragraphs. */
const MINUTES_PER_QUESTION = 3;
const PRACTICE_QUESTION = 'In two or three sentences, what do you enjoy most about your work?';

const POLICY_TEXT = {
  full: 'Your camera is used during the interview: the system looks at whether you are in view and attentive (face, eye contact, blinks) and at your facial expressions.',
  engagement: 'Your camera is used during the interview: the system looks at whether you are in view and attentive (face, eye contact, blinks). Your facial expressions are not analysed.',
  off: 'Your camera is not used in this interview: only your typed answers are.',
};

const LIVE_TEXT = {
  active: 'Live analysis on',
  sampled: 'Live analysis on (at a reduced rate)',
  paused: 'Live feedback paused: your interview goes on, and your video is analysed later',
  stopped: 'Camera analysis stopped',
};

/** Codes after which the page cannot go on. */
const FATAL = new Set(['SESSION_NOT_FOUND', 'SESSION_ERASED', 'SESSION_EXPIRED']);

export function candidatePage(root, api, interviewId) {
  return new CandidatePage(root, api, interviewId).begin();
}

class CandidatePage {
  constructor(root, api, id) {
    this.root = root;
    this.api = api;
    this.id = id;
    this.base = `/api/v1/interviews/${encodeURIComponent(id)}`;
    this.pendingKey = `ai-interview.pending.${id}`;
    this.live = null;
    this.sender = null;
    this.stream = null;
    this.video = null;
    this.stage = 'welcome';
    this.question = null;
    this.status = null;
    this.brightness = null;
    this.onUpdate = null;
  }

  async begin() {
    try {
      this.session = await this.api.get(this.base);
    } catch (error) {
      return this.fatal(error);
    }
    if (this.session.state === 'completed') return this.finished();
    return this.welcome();
  }

  fatal(error) {
    this.stopMedia();
    let text = `Something went wrong: ${error.message}`;
    if (error.status === 401) {
      text = 'Your invitation link has expired or is not valid. Ask the person who invited you for a new one.';
    } else if (error.code === 'SESSION_ERASED') {
      text = 'This interview has been deleted.';
    } else if (error.status === 404 || FATAL.has(error.code)) {
      text = 'This interview does not exist or is no longer open. If you think this is wrong, contact the person who invited you.';
    }
    show(this.root, h('h1', null, 'The interview cannot be opened'), alertBox(text));
  }

  welcome() {
    const s = this.session;
    const resuming = s.state === 'in_progress';
    show(this.root,
      h('h1', null, resuming ? 'Welcome back' : 'Welcome to your interview'),
      h('p', null, s.candidate_name ? `Hello ${s.candidate_name}.` : 'Hello.'),
      s.job_title ? h('p', { class: 'position' }, 'Position: ', h('strong', null, s.job_title)) : null,
      h('ul', { class: 'facts' },
        h('li', null, `${s.total_questions} questions, one at a time`),
        h('li', null, `About ${s.total_questions * MINUTES_PER_QUESTION} minutes`),
        h('li', null, 'You type your answers'),
        s.expires_at ? h('li', null, `Open until ${fmt.date(s.expires_at)}`) : null),
      h('p', null, POLICY_TEXT[s.policy] ?? POLICY_TEXT.full),
      h('p', null, 'First you read how your data is used and decide whether to consent; then you check your camera and try a practice question that does not count.'),
      h('button', { type: 'button', onclick: () => this.consent() }, resuming ? 'Continue' : 'Begin'));
  }

  async consent() {
    if (this.session.consent) return this.cameraCheck();
    let notice;
    try {
      notice = await this.api.get(`${this.base}/notice`);
    } catch (error) {
      return this.fatal(error);
    }
    const box = h('input', { type: 'checkbox', id: 'consent-box' });
    const go = h('button', { type: 'submit', disabled: true }, 'I consent, continue');
    box.addEventListener('change', () => { go.disabled = !box.checked; });
    const errors = h('div');
    const submit = async (event) => {
      event.preventDefault();
      go.disabled = true;
      try {
        await this.api.post(`${this.base}/consent`, {
          notice_version: notice.version,
          notice_sha256: notice.sha256,
        });
        this.session.consent = true;
        this.cameraCheck();
      } catch (error) {
        go.disabled = false;
        errors.replaceChildren(alertBox(error.message));
      }
    };
    show(this.root,
      h('h1', null, 'How your data is used'),
      h('p', null, `Please read this notice (version ${notice.version}). Nothing from your camera or your answers is sent before you consent, and you can withdraw your consent later.`),
      h('div', { class: 'notice', tabindex: 0, role: 'region', 'aria-label': 'Notice' }, notice.text),
      h('form', { onsubmit: submit },
        h('div', { class: 'check' }, box,
          h('label', { for: 'consent-box' }, 'I have read the notice and consent to my interview being analysed as it describes.')),
        errors,
        h('div', { class: 'actions' }, go,
          h('button', { type: 'button', class: 'secondary', onclick: () => this.declined() }, 'I do not consent'))));
  }

  declined() {
    show(this.root,
      h('h1', null, 'You have not consented'),
      h('p', null, 'Nothing has been recorded. Without your consent the interview cannot be taken here; contact the person who invited you to ask for another way to apply.'),
      h('button', { type: 'button', onclick: () => this.consent() }, 'Read the notice again'));
  }

  /** The live preview, made once and shown on every step after the camera check. */
  preview() {
    if (!this.video) return null;
    return h('figure', { class: 'preview' }, this.video, h('figcaption', null, 'Your camera'));
  }

  async cameraCheck() {
    this.stage = 'camera';
    this.connect();
    // A candidate coming back mid-interview has had the practice already.
    const resuming = (this.session.current_question?.index ?? 1) > 1;
    const next = () => (resuming ? this.interview() : this.practice());
    if (this.session.policy === 'off') return next();
    show(this.root,
      h('h1', null, 'Camera check'),
      h('p', null, 'Allow this page to use your camera when your browser asks.'));
    try {
      this.stream = this.stream ?? await openCamera();
    } catch (error) {
      return this.cameraRefused(error);
    }
    if (!this.video) {
      this.video = h('video', { autoplay: true, playsinline: true, 'aria-label': 'Your camera preview' });
      this.video.muted = true;
      this.video.srcObject = this.stream;
      this.sender = new FrameSender(this.video, (blob) => this.live.sendFrame(blob), {
        onBrightness: (b) => { this.brightness = b; },
      });
    }
    const item = (label) => h('li', { class: 'pending' }, label);
    const checks = {
      face: item('One face in view'),
      centred: item('Face centred and near enough'),
      light: item('Lit well enough'),
    };
    const verdict = h('p', { 'aria-live': 'polite' }, 'Checking…');
    const go = h('button', { type: 'button', disabled: true, onclick: next }, resuming ? 'Continue the interview' : 'Continue to the practice question');
    const mark = (el, ok) => {
      el.className = ok ? 'ok' : 'bad';
      el.dataset.ok = String(ok);
    };
    let good = 0;
    this.onUpdate = (u) => {
      const { width, height } = this.sender.frameSize;
      const one = u.face_detected && u.face_count === 1;
      const box = u.face_box;
      const centred = Boolean(one && box && width
        && Math.abs(box.x + box.width / 2 - width / 2) < width * 0.2
        && Math.abs(box.y + box.height / 2 - height / 2) < height * 0.25
        && box.height > height * 0.2);
      const lit = this.brightness !== null && this.brightness >= 50 && this.brightness <= 215;
      mark(checks.face, one);
      mark(checks.centred, centred);
      mark(checks.light, lit);
      good = one && centred && lit ? good + 1 : 0;
      if (good >= 2 && go.disabled) {
        go.disabled = false;
        verdict.textContent = 'All good: your camera is ready.';
      } else if (good === 0) {
        verdict.textContent = !u.face_detected ? 'No face found: sit in front of the camera.'
          : u.face_count > 1 ? 'More than one face found: make sure you are alone in view.'
            : !centred ? 'Move so that your face is in the middle of the picture.'
              : 'Your picture is too dark or too bright: face a light, avoid a window behind you.';
      }
    };
    this.onPaused = () => {
      go.disabled = false;
      verdict.textContent = 'The face check is not available right now. You may continue; your video is analysed later.';
    };
    show(this.root,
      h('h1', null, 'Camera check'),
      h('p', null, 'The system checks that it can see you. Sit facing the camera, in good light.'),
      this.preview(),
      h('ul', { class: 'checks', 'aria-label': 'Camera checks' }, checks.face, checks.centred, checks.light),
      verdict,
      go);
    this.sender.start();
    if (this.status?.live_feedback === 'paused') this.onPaused();
    return undefined;
  }

  cameraRefused(error) {
    show(this.root,
      h('h1', null, 'Your camera is needed'),
      alertBox(cameraAdvice(error)),
      h('p', null, 'If you cannot use a camera, contact the person who invited you.'),
      h('button', { type: 'button', onclick: () => this.cameraCheck() }, 'Try again'));
  }

  practice() {
    this.stage = 'practice';
    this.onUpdate = null;
    // The practice does not count: its frames are not sent either.
    this.sender?.stop();
    const area = h('textarea', { rows: 5 });
    const timer = new Timer();
    show(this.root,
      h('h1', null, 'Practice question'),
      h('p', { class: 'note' }, 'This question does not count: your answer is not sent or scored. Take it to get used to the page.'),
      this.preview(),
      h('p', { class: 'question' }, PRACTICE_QUESTION),
      field('Your practice answer', area),
      timer.el,
      h('button', {
        type: 'button',
        onclick: () => {
          timer.stop();
          this.interview();
        },
      }, 'Start the interview'));
  }

  interview() {
    this.stage = 'interview';
    this.sender?.start();
    this.progress = h('p', { class: 'progress', 'aria-live': 'polite' });
    this.timer = new Timer();
    this.liveState = h('p', { class: 'live-state', role: 'status' });
    this.connection = h('p', { class: 'connection', role: 'status' });
    this.errors = h('div');
    this.slot = h('div');
    show(this.root,
      h('h1', null, 'Interview'),
      h('div', { class: 'bar' }, this.progress, this.timer.el),
      this.liveState,
      this.connection,
      this.preview(),
      this.errors,
      this.slot);
    this.showLive();
    this.render();
  }

  /** Shows the current question, or completion when all are answered. */
  render() {
    if (this.stage !== 'interview') return;
    const s = this.status;
    if (s && s.total_questions && s.answered >= s.total_questions) return this.allAnswered();
    const q = this.question;
    if (!q) {
      this.slot.replaceChildren(h('p', null, 'Waiting for the first question…'));
      return undefined;
    }
    if (this.slot.dataset.question === q.id) return undefined;
    this.slot.dataset.question = q.id;
    this.progress.textContent = `Question ${q.index} of ${q.total}`;
    this.timer.restart();
    const draftKey = `ai-interview.draft.${this.id}.${q.id}`;
    const area = h('textarea', { rows: 8, required: true });
    area.value = sessionStorage.getItem(draftKey) ?? '';
    area.addEventListener('input', () => sessionStorage.setItem(draftKey, area.value));
    const send = h('button', { type: 'submit' }, q.index === q.total ? 'Submit the last answer' : 'Submit answer');
    const submit = (event) => {
      event.preventDefault();
      const transcript = area.value.trim();
      if (!transcript) {
        this.errors.replaceChildren(alertBox('Write an answer first (an answer cannot be changed once sent).'));
        return;
      }
      this.errors.replaceChildren();
      send.disabled = true;
      // Typed, not spoken: no duration, so scoring does not judge a speaking pace (words per
      // minute) that typing never reaches.
      const answer = { question_id: q.id, transcript };
      sessionStorage.setItem(this.pendingKey, JSON.stringify(answer));
      if (!this.live.send('answer', answer)) {
        this.errors.replaceChildren(alertBox('Your answer is saved and will be sent when the connection is back.'));
      }
    };
    this.slot.replaceChildren(
      h('form', { onsubmit: submit },
        h('h2', { class: 'question', id: 'question-text' }, q.text),
        field('Your answer', area, 'Type your answer; it is sent when you submit it.'),
        send));
    area.setAttribute('aria-labelledby', 'question-text');
    area.focus();
    announce(`Question ${q.index} of ${q.total}: ${q.text}`);
    return undefined;
  }

  allAnswered() {
    this.timer.stop();
    this.progress.textContent = 'All questions answered';
    if (this.slot.dataset.question === 'done') return;
    this.slot.dataset.question = 'done';
    const finish = h('button', {
      type: 'button',
      onclick: () => {
        finish.disabled = true;
        if (!this.live.send('complete')) {
          finish.disabled = false;
          this.errors.replaceChildren(alertBox('The connection is down; try again in a moment.'));
        }
      },
    }, 'Finish the interview');
    this.slot.replaceChildren(
      h('h2', null, 'All questions answered'),
      h('p', null, 'Finish the interview to send it for review. You cannot change your answers afterwards.'),
      finish);
    announce('All questions answered. Finish the interview to send it for review.');
  }

  connect() {
    if (this.live) return;
    this.live = new Live(this.id, this.api.token);
    this.live.addEventListener('status', (e) => this.onStatus(e.detail));
    this.live.addEventListener('question', (e) => this.onQuestion(e.detail));
    this.live.addEventListener('emotion_update', (e) => this.onUpdate?.(e.detail));
    this.live.addEventListener('error', (e) => this.onServerError(e.detail));
    this.live.addEventListener('open', () => this.setConnection(''));
    this.live.addEventListener('down', () => this.setConnection('Connection lost: reconnecting… Your answers are kept.'));
    this.live.connect();
  }

  setConnection(text) {
    if (this.connection) this.connection.textContent = text;
  }

  onStatus(status) {
    this.status = status;
    if (status.state === 'completed') return this.finished();
    const pending = this.pending();
    if (pending && status.total_questions && status.answered >= status.total_questions) this.clearPending();
    if (status.live_feedback === 'paused' && this.stage === 'camera') this.onPaused?.();
    this.showLive();
    this.render();
    return undefined;
  }

  onQuestion(question) {
    const pending = this.pending();
    if (pending && pending.question_id === question.id) {
      // The answer never arrived (the connection dropped): send it again.
      this.live.send('answer', pending);
    } else if (pending) {
      this.clearPending();
    }
    this.question = question;
    this.render();
  }

  onServerError(error) {
    if (FATAL.has(error.code)) {
      this.live.close();
      return this.fatal(error);
    }
    if (error.code === 'RATE_LIMITED' || error.code === 'IDLE_TIMEOUT') return undefined;
    // Shown in the interview's error slot, or above whatever step the candidate is on.
    if (this.stage === 'interview') this.errors.replaceChildren(alertBox(error.message));
    else this.root.prepend(alertBox(error.message));
    const send = this.slot?.querySelector('button[type=submit]');
    if (send) send.disabled = false;
    return undefined;
  }

  showLive() {
    if (!this.liveState || !this.status) return;
    this.liveState.textContent = this.session.policy === 'off' ? '' : LIVE_TEXT[this.status.live_feedback] ?? '';
    this.liveState.dataset.state = this.status.live_feedback;
  }

  pending() {
    try {
      return JSON.parse(sessionStorage.getItem(this.pendingKey));
    } catch {
      return null;
    }
  }

  clearPending() {
    sessionStorage.removeItem(this.pendingKey);
  }

  stopMedia() {
    this.sender?.stop();
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
  }

  finished() {
    this.stage = 'done';
    this.stopMedia();
    this.live?.close();
    const errors = h('div');
    const dialog = h('dialog', { 'aria-labelledby': 'erase-title' },
      h('h2', { id: 'erase-title' }, 'Delete your interview?'),
      h('p', null, 'Your answers, the analysis of your video and the report are deleted everywhere. This cannot be undone.'),
      h('form', { method: 'dialog', class: 'actions' },
        h('button', { value: 'erase', class: 'danger' }, 'Delete everything'),
        h('button', { value: 'cancel', class: 'secondary', autofocus: true }, 'Cancel')));
    dialog.addEventListener('close', async () => {
      if (dialog.returnValue !== 'erase') return;
      try {
        const receipt = await this.api.delete(this.base);
        sessionStorage.clear();
        show(this.root,
          h('h1', null, 'Your interview was deleted'),
          h('p', null, `Deletion was requested at ${fmt.date(receipt.requested_at)}. Every service removes what it holds; nothing of this interview will be shown to anyone.`));
      } catch (error) {
        errors.replaceChildren(alertBox(error.message));
      }
    });
    const exportData = async () => {
      try {
        const data = await this.api.get(`${this.base}/export`);
        const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
        download(blob, `interview-${this.id}.json`);
      } catch (error) {
        errors.replaceChildren(alertBox(error.message));
      }
    };
    show(this.root,
      h('h1', null, 'Thank you: your interview is complete'),
      h('h2', null, 'What happens next'),
      h('p', null, 'The organisation\'s recruiters read your answers and a report. Its automated scores only advise them: people make every decision, and they will contact you.'),
      h('h2', null, 'Your data'),
      h('p', null, 'You can download everything stored about this interview, or have it deleted at any time.'),
      errors,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: exportData }, 'Download my data'),
        h('button', { type: 'button', class: 'danger', onclick: () => dialog.showModal() }, 'Delete my interview')),
      dialog);
  }
}

/** A visible mm:ss clock of the time spent on the current question. */
class Timer {
  constructor() {
    this.el = h('p', { class: 'timer', 'aria-label': 'Time on this question' }, '00:00');
    this.restart();
  }

  restart() {
    this.stop();
    this.started = performance.now();
    this.el.textContent = '00:00';
    this.tick = setInterval(() => { this.el.textContent = fmt.clock(this.seconds()); }, 1000);
  }

  seconds() {
    return (performance.now() - this.started) / 1000;
  }

  stop() {
    clearInterval(this.tick);
  }
}
