// Secrets: metadata only (names, hosts, versions, last use); add, rotate, revoke. A value is typed once and never shown.
import { el, replace, when, table, empty, flash } from '../dom.js';
import { get, post } from '../api.js';

export async function render(root) {
  const s = await get('secrets');
  const name = el('input', { placeholder: 'name', 'aria-label': 'name', required: true });
  const hosts = el('input', { placeholder: 'hosts, comma-separated', 'aria-label': 'hosts', required: true });
  const header = el('input', { placeholder: 'header (optional)', 'aria-label': 'header' });
  const value = el('input', { type: 'password', placeholder: 'value', 'aria-label': 'value', autocomplete: 'off', required: true });
  const add = el('form', { class: 'inline card', id: 'secret-add' }, name, hosts, header, value, el('button', { class: 'primary', type: 'submit', text: 'Add secret' }));
  add.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = value.value;
    value.value = '';
    try {
      await post('secrets', { name: name.value, hosts: hosts.value.split(',').map((h) => h.trim()).filter(Boolean), header: header.value || undefined, value: v });
      flash(`Added ${name.value}.`);
      await render(root);
    } catch (err) {
      flash(`Could not add: ${err.message}`, true);
    }
  });
  const rotate = async (sec) => {
    const v = window.prompt(`New value for ${sec.name} (typed once, never shown again)`);
    if (!v) return;
    try {
      await post(`secrets/${encodeURIComponent(sec.name)}/rotate`, { value: v });
      flash(`Rotated ${sec.name}.`);
      await render(root);
    } catch (err) {
      flash(`Could not rotate: ${err.message}`, true);
    }
  };
  const revoke = async (sec) => {
    if (!window.confirm(`Revoke ${sec.name}? Every placeholder for it stops working now.`)) return;
    try {
      await post(`secrets/${encodeURIComponent(sec.name)}/revoke`);
      flash(`Revoked ${sec.name}.`);
      await render(root);
    } catch (err) {
      flash(`Could not revoke: ${err.message}`, true);
    }
  };
  const button = (text, cls, f, sec) => {
    const b = el('button', { type: 'button', class: cls, text });
    b.addEventListener('click', () => f(sec));
    return b;
  };
  replace(
    root,
    el('h1', { text: 'Secrets' }),
    !s.vault
      ? el('p', { class: 'status-bad', text: 'The vault is not open on this gateway: secrets cannot be listed or changed here.' })
      : s.secrets.length === 0
        ? empty('No secret is stored.')
        : table(
            [
              ['name', (x) => el('code', { text: x.name })],
              ['hosts', (x) => x.hosts.join(', ')],
              ['header', (x) => x.header ?? '—'],
              ['version', (x) => x.version],
              ['rotated', (x) => when(x.rotatedAt)],
              ['last used', (x) => when(x.lastUsedAt)],
              ['agents', (x) => (x.agents.length ? x.agents.join(', ') : '—')],
              ['', (x) => el('span', { class: 'row' }, button('Rotate', '', rotate, x), button('Revoke', 'danger', revoke, x))],
            ],
            s.secrets,
          ),
    s.vault ? el('h2', { text: 'Add a secret' }) : null,
    s.vault ? add : null,
  );
}
