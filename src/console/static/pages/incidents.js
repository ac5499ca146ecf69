// Incidents: isolated agents; isolate, restore, snapshot (the gateway's isolation service).
import { el, replace, json, table, empty, flash, when } from '../dom.js';
import { get, post } from '../api.js';

export async function render(root) {
  let iso;
  try {
    iso = await get('incidents');
  } catch (err) {
    replace(root, el('h1', { text: 'Incidents' }), el('p', { class: 'status-bad', id: 'incidents-unavailable', text: `${err.message}` }));
    return;
  }
  const { agents } = await get('agents');
  const agent = el('select', { 'aria-label': 'agent' }, agents.map((a) => el('option', { value: a.name, text: a.name })));
  const reason = el('input', { class: 'reason', placeholder: 'reason (required)', 'aria-label': 'reason' });
  const out = el('div');
  const act = async (action) => {
    try {
      const r = await post(`incidents/${encodeURIComponent(agent.value)}/${action}`, { reason: reason.value });
      flash(`${action}: ${agent.value}`);
      if (action === 'snapshot') replace(out, el('div', { class: 'card', id: 'snapshot' }, el('h3', { text: `Snapshot of ${r.agent}` }), el('p', {}, 'SHA-256 ', el('code', { text: r.sha256 }), ` — ${r.bytes} bytes`), el('pre', { text: json(r.snapshot) })));
      else await render(root);
    } catch (err) {
      flash(`Could not ${action}: ${err.message}`, true);
    }
  };
  const btn = (text, cls, action) => {
    const b = el('button', { type: 'button', class: cls, text });
    b.addEventListener('click', () => act(action));
    return b;
  };
  const all = Array.isArray(iso.isolations) ? iso.isolations : [];
  const list = all.filter((i) => !i.restoredAt);
  const past = all.filter((i) => i.restoredAt);
  replace(
    root,
    el('h1', { text: 'Incidents' }),
    list.length === 0
      ? empty('No agent is isolated.')
      : table(
          [
            ['agent', (i) => el('code', { text: String(i.agent ?? '') })],
            ['reason', (i) => String(i.reason ?? '—')],
            ['by', (i) => String(i.by ?? '—')],
            ['since', (i) => when(i.at)],
          ],
          list,
        ),
    past.length > 0 ? el('h2', { text: 'Restored' }) : null,
    past.length > 0
      ? table(
          [
            ['agent', (i) => el('code', { text: String(i.agent ?? '') })],
            ['isolated', (i) => `${when(i.at)} by ${i.by} — ${i.reason}`],
            ['restored', (i) => `${when(i.restoredAt)} by ${i.restoredBy ?? '—'} — ${i.restoreReason ?? ''}`],
          ],
          past.slice(0, 20),
        )
      : null,
    el('h2', { text: 'Act on an agent' }),
    el('div', { class: 'row card' }, agent, reason, btn('Isolate', 'danger', 'isolate'), btn('Restore', '', 'restore'), btn('Snapshot', '', 'snapshot')),
    out,
  );
}
