// Building the page from data without ever parsing it as HTML: names, answers and notices are
// other people's text.

/** An element with attributes (`on*` functions become listeners) and children. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' || key === 'checked' || key === 'disabled') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces what `root` shows, and moves focus to its heading for keyboard and screen-reader users. */
export function show(root, ...children) {
  root.replaceChildren(...children.flat());
  const heading = root.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

/** Says `text` to screen readers without moving focus. */
export function announce(text) {
  const live = document.getElementById('live');
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 30);
}

/** A labelled form field: the label names the control for assistive technology. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** An alert region for errors: read out at once. */
export function alertBox(text) {
  return h('p', { class: 'alert', role: 'alert' }, text);
}

export const fmt = {
  date(ms) {
    return ms ? new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';
  },
  clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  },
  score(value) {
    return value === null || value === undefined ? '—' : Math.round(value).toString();
  },
  percent(ratio) {
    return ratio === null || ratio === undefined ? '—' : `${Math.round(ratio * 100)}%`;
  },
};
