// Agents: each agent's effective permissions, as the gateway's policy engine decides them (policy explain).
import { el, replace, json, tag, meta, table, empty, when } from '../dom.js';
import { get, qs } from '../api.js';

function list(items) {
  return items && items.length > 0 ? el('span', {}, items.map((t) => el('code', { class: 'tag', text: typeof t === 'string' ? t : json(t, 0) }))) : el('span', { class: 'muted', text: 'none' });
}

async function showAgent(box, name) {
  const a = await get(`agents/${encodeURIComponent(name)}`);
  const explainOut = el('div');
  const tool = el('input', { placeholder: 'tool, e.g. files__read', 'aria-label': 'tool' });
  const args = el('input', { placeholder: 'arguments as JSON (optional)', 'aria-label': 'arguments', class: 'reason' });
  const form = el('form', { class: 'inline' }, tool, args, el('button', { class: 'primary', type: 'submit', text: 'Explain' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const x = await get(`agents/${encodeURIComponent(name)}/explain${qs({ tool: tool.value, args: args.value })}`);
      replace(explainOut, el('div', { class: 'card' }, el('p', {}, tag(x.effect), ` ${x.reason} — rule `, el('code', { text: x.rule })), x.policies.map((p) => el('pre', { text: p.text })), x.errors.length ? el('pre', { text: json(x.errors) }) : null));
    } catch (err) {
      replace(explainOut, el('p', { class: 'status-bad', text: err.message }));
    }
  });
  replace(
    box,
    el(
      'div',
      { class: 'card', id: 'agent-detail' },
      el('h2', { text: a.name }),
      meta([
        ['isolated', a.isolated === null ? 'unknown (no incident service)' : a.isolated ? 'YES' : 'no'],
        ['tools (config)', list(a.tools)],
        ['approve', list(a.approve)],
        ['deny', list(a.deny)],
        ['resources', list(a.resources)],
        ['prompts', list(a.prompts)],
        ['network', list(a.network.map((r) => `${r.host}:${r.ports.join(',')}${r.methods ? ` ${r.methods.join(',')}` : ''}`))],
        ['labels', list(a.labels)],
        ['scope', a.scope],
        ['isolate users', a.isolateUsers ? 'yes' : 'no'],
        ['model door', a.model ? `${a.model.provider} ${a.model.baseUrl}` : 'none'],
        ['keys', String(a.keys)],
      ]),
      el('h3', { text: 'Tools it can see and why' }),
      a.effective.length === 0
        ? empty('No tool known by name yet (tools are pinned when first listed).')
        : table(
            [
              ['tool', (t) => el('code', { text: t.tool })],
              ['listed', (t) => (t.visible ? tag('allow') : tag('deny'))],
              ['call', (t) => el('span', {}, tag(t.call.effect), ` ${t.call.reason}`)],
              ['decided by', (t) => el('code', { text: t.call.rule })],
            ],
            a.effective,
          ),
      el('h3', { text: 'Secrets it may use (metadata only)' }),
      a.secretsInfo.length === 0
        ? el('p', { class: 'muted', text: 'none' })
        : table(
            [
              ['name', (s) => el('code', { text: s.name })],
              ['stored', (s) => (s.stored ? 'yes' : 'no')],
              ['hosts', (s) => (s.hosts ?? []).join(', ')],
              ['version', (s) => s.version ?? '—'],
              ['last used', (s) => when(s.lastUsedAt)],
            ],
            a.secretsInfo,
          ),
      el('h3', { text: 'Pinned tool definitions' }),
      a.pins.length === 0 ? el('p', { class: 'muted', text: 'none' }) : table([['tool', (p) => el('code', { text: p.tool })], ['hash', (p) => el('code', { text: p.hash })], ['pinned', (p) => when(p.pinnedAt)], ['by', (p) => p.pinnedBy]], a.pins),
      el('h3', { text: 'Explain a call (same engine as bastion policy explain)' }),
      form,
      explainOut,
    ),
  );
}

export async function render(root, { params }) {
  const detail = el('div');
  const { agents } = await get('agents');
  replace(
    root,
    el('h1', { text: 'Agents' }),
    agents.length === 0
      ? empty('No agent is configured.')
      : table(
          [
            ['agent', (a) => el('code', { text: a.name })],
            ['tools', (a) => a.tools.length],
            ['approve', (a) => a.approve.length],
            ['deny', (a) => a.deny.length],
            ['secrets', (a) => a.secrets.length],
            ['network rules', (a) => a.network.length],
            ['isolated', (a) => (a.isolated === null ? '—' : a.isolated ? tag('deny') : 'no')],
          ],
          agents,
          (a) => {
            location.hash = `#/agents/${encodeURIComponent(a.name)}`;
          },
        ),
    detail,
  );
  const name = params[0] ?? agents[0]?.name;
  if (name) await showAgent(detail, name);
}
