// Approvals: calls held for an admin, live from the event stream; approve or deny with a reason.
import { el, replace, when, json, tag, meta, flash, empty, table } from '../dom.js';
import { get, post } from '../api.js';

let unsubscribe = null;

function argumentRows(a) {
  const args = a.arguments;
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return el('pre', { text: typeof args === 'string' ? args : json(args) });
  const prov = a.provenance && typeof a.provenance === 'object' ? a.provenance : {};
  const names = Object.keys(args);
  if (names.length === 0) return el('p', { class: 'muted', text: 'No arguments.' });
  return table(
    [
      ['argument', (n) => el('code', { text: n })],
      ['value (redacted)', (n) => el('pre', { text: typeof args[n] === 'string' ? args[n] : json(args[n]) })],
      ['came from', (n) => (Array.isArray(prov[n]) && prov[n].length > 0 ? el('span', {}, prov[n].map((o) => tag(o))) : el('span', { class: 'muted', text: a.provenance ? '—' : 'not traced' }))],
    ],
    names,
  );
}

function card(a) {
  const reason = el('input', { class: 'reason', placeholder: 'reason (recorded in the audit log)', 'aria-label': 'reason', maxlength: '500' });
  const decide = async (verdict, button) => {
    button.disabled = true;
    try {
      await post(`approvals/${encodeURIComponent(a.id)}/${verdict}`, { reason: reason.value });
      flash(`${verdict === 'approve' ? 'Approved' : 'Denied'}: ${a.tool}`);
    } catch (err) {
      flash(`Could not ${verdict}: ${err.message}`, true);
      button.disabled = false;
    }
  };
  const approveBtn = el('button', { class: 'approve', type: 'button', text: 'Approve', dataset: { action: 'approve' } });
  const denyBtn = el('button', { class: 'deny', type: 'button', text: 'Deny', dataset: { action: 'deny' } });
  approveBtn.addEventListener('click', () => decide('approve', approveBtn));
  denyBtn.addEventListener('click', () => decide('deny', denyBtn));
  const policy = a.policy;
  return el(
    'article',
    { class: 'card pending', dataset: { approval: a.id } },
    el('h3', {}, el('code', { text: a.tool })),
    meta([
      ['agent', a.agent],
      ['end user', a.user ?? '(none named)'],
      ['held since', when(a.createdAt)],
      ['expires', when(a.expiresAt)],
      ['approval id', el('code', { text: a.id })],
      ['policy that asked', policy ? el('span', { class: 'policy' }, tag(policy.effect), ` ${policy.reason} — rule `, el('code', { text: policy.rule }), policy.approximate ? el('span', { class: 'muted', text: ' (re-read on the preview’s provenance)' }) : null) : '—'],
    ]),
    policy && policy.policies && policy.policies.length > 0 ? el('details', {}, el('summary', { text: 'Policy text' }), policy.policies.map((p) => el('pre', { text: p.text }))) : null,
    el('h2', { text: 'Arguments' }),
    argumentRows(a),
    a.conversation && a.conversation.tainted ? el('p', { class: 'status-bad', text: `The conversation read untrusted content (${(a.conversation.sources ?? []).join(', ')}).` }) : null,
    el('div', { class: 'row' }, reason, approveBtn, denyBtn),
  );
}

export async function render(root, { live }) {
  const list = el('div', { id: 'pending' });
  const recent = el('div', { id: 'recent' });
  replace(root, el('h1', { text: 'Pending approvals' }), el('p', { class: 'muted', text: 'Calls held for an admin decision. This list updates live.' }), list, el('h2', { text: 'Recent decisions' }), recent);
  const draw = () => {
    replace(list, live.approvals.length === 0 ? empty('No call is waiting for approval.') : live.approvals.map(card));
  };
  const drawRecent = async () => {
    const all = await get('approvals');
    const done = all.approvals.filter((a) => a.status !== 'pending').slice(0, 15);
    replace(
      recent,
      done.length === 0
        ? empty('No decisions yet.')
        : table(
            [
              ['tool', (a) => el('code', { text: a.tool })],
              ['agent', (a) => a.agent],
              ['user', (a) => a.user ?? '—'],
              ['status', (a) => tag(a.status)],
              ['by', (a) => a.decidedBy ?? '—'],
              ['reason', (a) => a.reason ?? '—'],
              ['decided', (a) => when(a.decidedAt)],
            ],
            done,
          ),
    );
  };
  draw();
  await drawRecent();
  unsubscribe?.();
  const onChange = (kind) => {
    if (kind !== 'approvals') return;
    draw();
    drawRecent().catch(() => {});
  };
  live.listeners.add(onChange);
  unsubscribe = () => live.listeners.delete(onChange);
}

export function leave() {
  unsubscribe?.();
  unsubscribe = null;
}
