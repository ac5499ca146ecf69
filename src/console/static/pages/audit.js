// Audit explorer: filters, newest first, paging by seq; one record's detail; the chain's status.
import { el, replace, when, json, tag, meta, table, empty } from '../dom.js';
import { get, qs } from '../api.js';

const FIELDS = [
  ['door', 'select', ['', 'tool', 'model', 'network', 'a2a', 'admin', 'system']],
  ['agent', 'input'],
  ['user', 'input'],
  ['effect', 'select', ['', 'allow', 'deny', 'approve']],
  ['reason', 'input'],
  ['method', 'input'],
  ['from', 'input', 'datetime-local'],
  ['to', 'input', 'datetime-local'],
];

function chainPanel(c) {
  return el(
    'div',
    { class: 'card', id: 'chain-status' },
    el('h3', {}, 'Chain ', c.ok ? el('span', { class: 'status-ok', text: 'verified' }) : el('span', { class: 'status-bad', text: 'BROKEN' })),
    meta([
      ['verified through', `record ${c.verifiedThrough} of ${c.tip}`],
      ['last checkpoint', c.lastCheckpoint ? `seq ${c.lastCheckpoint.seq} at ${when(c.lastCheckpoint.time)} (key ${c.lastCheckpoint.keyId.slice(0, 12)}…)` : 'none yet'],
      ['checkpoints', c.checkpoints],
      ['witness', c.witness === null ? 'not configured' : c.witness.error ? `${c.witness.file}: ${c.witness.error}` : `${c.witness.file}: ${c.witness.count} checkpoints, last at seq ${c.witness.lastSeq ?? '—'}`],
      ...(c.broken ? [['break', `${c.broken.reason} at seq ${c.broken.seq}: ${c.broken.message}`]] : []),
    ]),
  );
}

async function showRecord(detail, seq) {
  const r = await get(`audit/${encodeURIComponent(seq)}`);
  replace(
    detail,
    el(
      'div',
      { class: 'card', id: 'record-detail' },
      el('h3', { text: `Record ${r.seq}` }),
      meta([
        ['time', when(r.time)],
        ['door', r.door],
        ['principal', r.agent ?? '(unauthenticated)'],
        ['end user', r.user ?? '—'],
        ['method', r.method],
        ['target', r.target ?? '—'],
        ['decision', r.decision ? el('span', {}, tag(r.decision.effect), ` ${r.decision.reason} — `, el('code', { text: r.decision.rule })) : el('span', { text: 'pruned: a tombstone keeps only its place in the chain' })],
        ['outcome', tag(r.outcome)],
        ['duration', `${r.durationMs} ms`],
        ['hash', el('code', { text: r.hash })],
        ['previous', el('code', { text: r.prevHash })],
      ]),
      el('pre', { text: json(r) }),
    ),
  );
  detail.scrollIntoView({ block: 'nearest' });
}

export async function render(root, { params }) {
  const inputs = {};
  const form = el('form', { class: 'filters', id: 'audit-filters' });
  for (const [name, kind, extra] of FIELDS) {
    const input =
      kind === 'select'
        ? el('select', { name, 'aria-label': name }, extra.map((o) => el('option', { value: o, text: o === '' ? `any ${name}` : o })))
        : el('input', { name, placeholder: name, 'aria-label': name, type: extra ?? 'text' });
    inputs[name] = input;
    form.append(input);
  }
  form.append(el('button', { class: 'primary', type: 'submit', text: 'Filter' }));
  const chain = el('div', {}, el('p', { class: 'muted', text: 'Verifying the chain…' }));
  const results = el('div', { id: 'audit-results' });
  const more = el('button', { type: 'button', text: 'Older', hidden: true });
  const detail = el('div', { id: 'audit-detail' });
  replace(root, el('h1', { text: 'Audit explorer' }), chain, form, results, el('div', { class: 'row' }, more), detail);
  let next = null;
  let rows = [];
  const query = () => {
    const q = {};
    for (const [name, , extra] of FIELDS) {
      const v = inputs[name].value;
      if (!v) continue;
      q[name] = extra === 'datetime-local' ? new Date(v).toISOString() : v;
    }
    return q;
  };
  const draw = () => {
    replace(
      results,
      rows.length === 0
        ? empty('No record matches.')
        : table(
            [
              ['seq', (r) => r.seq],
              ['time', (r) => when(r.time)],
              ['door', (r) => r.door],
              ['principal', (r) => r.agent ?? '—'],
              ['user', (r) => r.user ?? '—'],
              ['method', (r) => el('code', { text: r.method })],
              ['target', (r) => r.target ?? '—'],
              ['decision', (r) => (r.decision ? el('span', {}, tag(r.decision.effect), ` ${r.decision.reason}`) : el('span', { text: 'pruned' }))],
              ['outcome', (r) => tag(r.outcome)],
            ],
            rows,
            (r) => {
              location.hash = `#/audit/${r.seq}`;
            },
          ),
    );
    more.hidden = next === null;
  };
  const load = async (append) => {
    const page = await get(`audit${qs({ ...query(), limit: 50, before: append ? next : undefined })}`);
    rows = append ? rows.concat(page.records) : page.records;
    next = page.next;
    draw();
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load(false).catch(() => {});
  });
  more.addEventListener('click', () => load(true).catch(() => {}));
  const loads = [load(false), get('audit/chain').then((c) => replace(chain, chainPanel(c)))];
  if (params[0]) loads.push(showRecord(detail, params[0]));
  await Promise.all(loads);
}
