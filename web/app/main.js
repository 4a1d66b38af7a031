// Chooses the page: an invitation link opens the candidate's interview, a member's sign-in link
// the recruiter's dashboard. The token leaves the address bar at once (addresses reach logs and
// history) and lives in this tab's session storage.
import { Api, claims } from './api.js';
import { alertBox, field, h, show } from './dom.js';
import { candidatePage } from './candidate.js';
import { dashboard } from './dashboard.js';

const KEY = 'ai-interview.token';
const root = document.getElementById('main');

function signOut() {
  sessionStorage.clear();
  location.assign('/');
}

function signIn(reason) {
  const input = h('textarea', { rows: 4, autocomplete: 'off', spellcheck: 'false' });
  show(root,
    h('h1', null, 'Sign in'),
    reason ? alertBox(reason) : null,
    h('p', null, 'Open the link from your invitation, or the sign-in link your administrator gave you. You can also paste a token here.'),
    h('form', {
      onsubmit(event) {
        event.preventDefault();
        const token = input.value.trim();
        if (token) {
          sessionStorage.setItem(KEY, token);
          start();
        }
      },
    }, field('Token', input), h('button', { type: 'submit' }, 'Sign in')));
}

function start() {
  const params = new URLSearchParams(location.search);
  const fromLink = params.get('invitation') ?? params.get('token');
  if (fromLink) {
    sessionStorage.setItem(KEY, fromLink);
    history.replaceState(null, '', `/${location.hash}`);
  }
  const token = sessionStorage.getItem(KEY);
  if (!token) return signIn();
  const c = claims(token);
  if (!c) return signIn('That is not a sign-in token.');
  if (c.exp && c.exp * 1000 < Date.now()) {
    sessionStorage.removeItem(KEY);
    return signIn('Your sign-in has expired. Open your link again, or ask for a new one.');
  }
  const api = new Api(token);
  const who = document.getElementById('who');
  if (c.interview) {
    who.replaceChildren();
    return candidatePage(root, api, c.interview);
  }
  who.replaceChildren(
    h('span', null, `${c.sub} (${c.role ?? (c.roles ?? []).join(', ')})`),
    ' ',
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'));
  return dashboard(root, api, c, () => signIn('Your sign-in was refused; sign in again.'));
}

start();
