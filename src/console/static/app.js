// The console's shell: sign-in, hash routing (#/approvals, #/audit, ...), the live event stream.
import { el, replace, flash } from './dom.js';
import { get, post, setCsrf, whenSignedOut } from './api.js';
import * as approvals from './pages/approvals.js';
import * as audit from './pages/audit.js';
import * as agents from './pages/agents.js';
import * as secrets from './pages/secrets.js';
import * as bans from './pages/bans.js';
import * as alerts from './pages/alerts.js';
import * as incidents from './pages/incidents.js';

const PAGES = { approvals, audit, agents, secrets, bans, alerts, incidents };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signOut = document.getElementById('sign-out');

/** The live state pushed by the server, and who listens to it. */
export const live = {
  approvals: [],
  alerts: [],
  incidents: null,
  listeners: new Set(),
  emit(kind) {
    for (const f of this.listeners) f(kind);
  },
};

let source = null;
let current = null;

function connectEvents() {
  source?.close();
  source = new EventSource('/console/api/events');
  source.addEventListener('approvals', (e) => {
    live.approvals = JSON.parse(e.data).approvals;
    const badge = document.getElementById('pending-count');
    badge.textContent = String(live.approvals.length);
    badge.hidden = live.approvals.length === 0;
    live.emit('approvals');
  });
  source.addEventListener('alert', (e) => {
    live.alerts.unshift(JSON.parse(e.data));
    const badge = document.getElementById('alert-count');
    badge.textContent = String(live.alerts.length);
    badge.hidden = false;
    live.emit('alert');
  });
  source.addEventListener('incidents', (e) => {
    live.incidents = JSON.parse(e.data).isolations;
    live.emit('incidents');
  });
  source.addEventListener('signed-out', () => showSignIn());
}

function showSignIn(message) {
  source?.close();
  source = null;
  setCsrf(null);
  nav.hidden = true;
  signOut.hidden = true;
  who.textContent = '';
  const input = el('input', { type: 'password', id: 'admin-key', name: 'key', autocomplete: 'off', required: true, placeholder: 'admin key' });
  const error = el('p', { class: 'status-bad', id: 'sign-in-error', hidden: !message, text: message ?? '' });
  const form = el(
    'form',
    {
      class: 'card signin',
      id: 'sign-in',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const key = input.value;
        input.value = '';
        try {
          const s = await post('sign-in', { key });
          signedIn(s);
        } catch (err) {
          error.textContent = err.code === 'ERR_AUTH_INVALID' ? 'Wrong admin key.' : `Sign-in failed: ${err.message}`;
          error.hidden = false;
        }
      },
    },
    el('h1', { text: 'Sign in to the Bastion console' }),
    el('p', { class: 'muted', text: 'Enter an admin key (config admin.keys). It is exchanged once for a session; the key is not kept in the page.' }),
    input,
    error,
    el('button', { class: 'primary', type: 'submit', text: 'Sign in' }),
  );
  replace(main, form);
  input.focus();
}

function signedIn(s) {
  setCsrf(s.csrf);
  who.textContent = `signed in as ${s.admin}`;
  nav.hidden = false;
  signOut.hidden = false;
  connectEvents();
  if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/approvals';
  else route();
}

function route() {
  if (nav.hidden) return;
  const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const page = PAGES[name] ?? PAGES.approvals;
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === (PAGES[name] ? name : 'approvals'));
  current?.leave?.();
  current = page;
  const root = el('section', { id: `page-${PAGES[name] ? name : 'approvals'}` });
  replace(main, root);
  if (name === 'alerts') {
    live.alerts = [];
    document.getElementById('alert-count').hidden = true;
  }
  Promise.resolve(page.render(root, { live, params: rest.map(decodeURIComponent) })).catch((err) => {
    replace(root, el('p', { class: 'status-bad', text: `Could not load this page: ${err.message}` }));
  });
}

whenSignedOut(() => showSignIn('Your session ended. Sign in again.'));
window.addEventListener('hashchange', route);
signOut.addEventListener('click', async () => {
  try {
    await post('sign-out');
  } catch {
    // Signed out either way.
  }
  showSignIn();
  flash('Signed out.');
});

get('session').then(signedIn, () => showSignIn());
