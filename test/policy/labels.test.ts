/**
 * Tool labels (src/policy/labels.ts): config patterns, per agent before global,
 * the strict default, and MCP annotations that may only tighten.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ResolvedToolMeta, ToolEffect } from '../../src/config/types.ts';
import { EFFECTS, LabelIndex, STRICT_EFFECTS } from '../../src/policy/labels.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { tempDir } from '../helpers/gateway.ts';

function loadConfigText(yaml: string): ReturnType<typeof loadConfig> {
  const file = join(tempDir(), 'bastion.yaml');
  writeFileSync(file, yaml);
  return loadConfig(file, { env: {}, secrets: 'strict' });
}

const tools: ResolvedToolMeta[] = [
  { pattern: 'mail__read_*', scope: 'external', crossUser: false, source: 'untrusted', effect: ['read'] },
  { pattern: 'bank__send_money', scope: 'external', crossUser: false, source: 'trusted', effect: ['pay'] },
  { pattern: 'admin__*', scope: 'internal', crossUser: false },
  { pattern: 'notes__*', scope: 'external', crossUser: false, source: 'trusted' },
];
const index = new LabelIndex(tools, [{ name: 'payer', labels: [{ pattern: 'mail__read_*', source: 'trusted', effect: ['read'] }] }, { name: 'plain', labels: [] }]);

test('configured labels, first match; the agent\'s own patterns before the global ones', () => {
  assert.deepEqual(index.labelOf('plain', 'mail__read_inbox'), { source: 'untrusted', effects: ['read'], labelled: true, rule: 'tools.mail__read_*', tightenedBy: [] });
  assert.deepEqual(index.labelOf('payer', 'mail__read_inbox'), { source: 'trusted', effects: ['read'], labelled: true, rule: 'agents.payer.labels.mail__read_*', tightenedBy: [] });
  assert.deepEqual(index.labelOf('plain', 'bank__send_money').effects, ['pay']);
});

test('unlabelled: untrusted and every side effect; a pattern with scope only labels nothing; one half leaves the other strict', () => {
  assert.deepEqual(index.labelOf('plain', 'web__fetch'), { source: 'untrusted', effects: [...STRICT_EFFECTS], labelled: false, rule: 'default', tightenedBy: [] });
  assert.equal(index.labelOf('plain', 'admin__reset').rule, 'default', 'admin__* declares no label');
  const half = index.labelOf('plain', 'notes__list');
  assert.equal(half.source, 'trusted');
  assert.deepEqual(half.effects, [...STRICT_EFFECTS]);
  assert.equal(half.labelled, false);
  assert.equal(index.isLabelled('plain', 'notes__list'), false);
  assert.equal(index.isLabelled('plain', 'mail__read_x'), true);
});

test('annotations tighten: open world → untrusted + egress; destructive → delete; not read-only → write; never the reverse', () => {
  const t = index.labelOf('plain', 'bank__send_money', { openWorldHint: true, destructiveHint: true, readOnlyHint: false });
  assert.equal(t.source, 'untrusted');
  assert.deepEqual(t.effects, ['write', 'pay', 'delete', 'egress']);
  assert.deepEqual(t.tightenedBy, ['openWorldHint', 'destructiveHint', 'readOnlyHint']);
  const loose = index.labelOf('plain', 'web__fetch', { readOnlyHint: true, destructiveHint: false, openWorldHint: false });
  assert.deepEqual(loose.effects, [...STRICT_EFFECTS], 'readOnlyHint: true removes nothing');
  assert.equal(loose.source, 'untrusted');
  assert.deepEqual(index.labelOf('plain', 'bank__send_money', { openWorldHint: 'yes' as unknown as boolean }).tightenedBy, [], 'only a boolean true tightens');
});

test('property: annotations never loosen a label', () => {
  const effect = fc.constantFrom<ToolEffect>(...EFFECTS);
  const hint = fc.option(fc.oneof(fc.boolean(), fc.string(), fc.integer()), { nil: undefined });
  fc.assert(
    fc.property(fc.constantFrom<'trusted' | 'untrusted'>('trusted', 'untrusted'), fc.uniqueArray(effect, { minLength: 1 }), hint, hint, hint, (source, effects, ro, de, ow) => {
      const i = new LabelIndex([{ pattern: 'x__*', scope: 'external', crossUser: false, source, effect: effects }], []);
      const base = i.labelOf('a', 'x__t');
      const t = i.labelOf('a', 'x__t', { readOnlyHint: ro, destructiveHint: de, openWorldHint: ow });
      if (base.source === 'untrusted') assert.equal(t.source, 'untrusted');
      for (const e of base.effects) assert.ok(t.effects.includes(e), `kept ${e}`);
    }),
  );
});

test('unusedPatterns names the label patterns that match no tool (config check warns)', () => {
  assert.deepEqual(index.unusedPatterns(['mail__read_inbox', 'notes__list']), ['tools.bank__send_money']);
});

test('the config carries labels: tools.P.source/effect and agents.X.labels; a bad effect is refused with its path', async () => {
  const { config } = await loadConfigText(`version: 1
tools:
  "mail__*": { source: untrusted, effect: [read, read] }
agents:
  a:
    labels: { "bank__*": { source: trusted, effect: [pay] } }
`);
  assert.deepEqual(config.tools[0]?.effect, ['read']);
  assert.deepEqual(config.agents.get('a')?.labels, [{ pattern: 'bank__*', source: 'trusted', effect: ['pay'] }]);
  await assert.rejects(loadConfigText(`version: 1
tools:
  "mail__*": { effect: [launch] }
`), (err: Error & { code?: string }) => err.code === 'ERR_CONFIG_INVALID' && /tools/.test(err.message));
});

test('a label pattern that can name no tool is warned when the config loads (a typo leaves tools strict)', async () => {
  const { warnings } = await loadConfigText(`version: 1
tools:
  "mial__*": { source: untrusted, effect: [read] }
  "mail__read": { source: untrusted, effect: [read] }
  "admin__*": { scope: internal }
agents:
  a:
    labels: { "bnak__send": { effect: [pay] }, "*": { source: untrusted } }
upstreams:
  mail: { command: "true" }
`);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0] ?? '', /mial__\*/);
  assert.match(warnings[1] ?? '', /bnak__send/);
});
