/**
 * Each stage of the tool door's tools/call (src/mcp/call-stages.ts) on its own,
 * without sockets: plain objects as dependencies. Every refusal is checked for
 * its reason (the audit record's) and its error code (the kernel's table, as the
 * tool door answers it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { canonicalJson } from '../../src/audit/canonical.ts';
import type { HoldOutcome, HoldRequest } from '../../src/approvals/queue.ts';
import type { ApprovalRecord } from '../../src/approvals/store.ts';
import type { ResolvedAbility, ResolvedUpstream } from '../../src/config/types.ts';
import { allow, deny, type Decision } from '../../src/decision.ts';
import { isReason, RPC } from '../../src/door/reasons.ts';
import { refusalOf } from '../../src/door/refusal.ts';
import { ABILITIES_UPSTREAM } from '../../src/abilities/catalogue.ts';
import type { Catalogue, Entry } from '../../src/mcp/catalogue.ts';
import {
  decide,
  DENIED_TEXT,
  guardPaths,
  holdForApproval,
  isRefused,
  noteArguments,
  releasePasted,
  renderRefusal,
  resolveTool,
  runAbility,
  screenToolResult,
  validateArguments,
  type DecidedCall,
  type NotedCall,
  type Refused,
  type ReleaseDeps,
  type RequestAudit,
  type ResolvedCall,
  type ToolCall,
} from '../../src/mcp/call-stages.ts';
import type { PathVerdict } from '../../src/policy/paths.ts';
import type { PolicyRequest } from '../../src/policy/engine.ts';
import { setOfForms } from '../../src/redact/engine.ts';
import { redactionForms } from '../../src/redact/values.ts';
import { RELEASE_DENIALS } from '../../src/vault/release.ts';
import type { StoredPastedSecret } from '../../src/vault/pasted-store.ts';
import { sha256Hex } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';

const SCHEMA = { type: 'object', properties: { path: { type: 'string' } }, additionalProperties: false };
const TOOL: Tool = { name: 'files__read', inputSchema: SCHEMA as Tool['inputSchema'] };
const ENTRY: Entry<Tool> = { exposed: 'files__read', upstream: 'files', original: 'read', item: TOOL, hidden: [] };
const UPSTREAM = { name: 'files', secretHosts: ['api.example.com'] } as unknown as ResolvedUpstream;
const TOKEN = 'abcdefghijkl';
const PLACEHOLDER = `<<SECRET_${TOKEN}>>`;
/** A made-up value standing for a pasted credential (built here, never a real one). */
const VALUE = ['pasted', 'value', 'for', 'tests', '0123456789'].join('-');

function newRecord(): RequestAudit {
  return { started: 0, time: '', method: 'tools/call', target: 'files__read', decision: allow('mcp.request', 'protocol'), argsDigest: null, args: undefined, outcome: null, detail: {} };
}

function newCall(args: Record<string, unknown> = {}, over: Partial<ToolCall> = {}): ToolCall {
  const canonicalArgs = canonicalJson(args);
  return {
    agent: { name: 'bot', scope: 'external', isolateUsers: false },
    user: 'alice',
    userVerified: false,
    session: 's1',
    conversation: null,
    name: 'files__read',
    args,
    canonicalArgs,
    argsDigest: sha256Hex(canonicalArgs),
    ref: 'ref000000001',
    record: newRecord(),
    signal: new AbortController().signal,
    ...over,
  };
}

function resolved(args: Record<string, unknown> = {}, over: Partial<ResolvedCall> = {}): ResolvedCall {
  return { ...newCall(args), entry: ENTRY, ability: undefined, isAbility: false, upstream: UPSTREAM, ...over };
}

function decided(args: Record<string, unknown> = {}, decision: Decision = allow('policy.permit', 'p0'), over: Partial<ResolvedCall> = {}): DecidedCall {
  return { ...resolved(args, over), decision };
}

function noted(args: Record<string, unknown> = {}, decision: Decision = allow('policy.permit', 'p0'), over: Partial<ResolvedCall> = {}): NotedCall {
  return noteArguments(decided(args, decision, over), 'none');
}

function catalogue(tools: Entry<Tool>[]): Catalogue {
  return { tools: new Map(tools.map((t) => [t.exposed, t])), prompts: new Map(), resources: new Map(), templates: [], resourceUpstreams: [], problems: [] };
}

/** Asserts `x` is a refusal with `reason` and `code`, and that the reason is a row of the kernel's table. */
function assertRefused(x: object, reason: string, code: string): Refused {
  assert.ok(isRefused(x), `expected a refusal (${reason}), got ${JSON.stringify(x).slice(0, 200)}`);
  assert.equal(x.refused.decision.effect, 'deny');
  assert.equal(x.refused.decision.reason, reason);
  assert.equal(x.refused.code, code);
  assert.ok(isReason(reason), `${reason} is a row of the table`);
  return x;
}

// ------------------------------------------------------------------ resolve

test('resolve: an unknown tool is tool.unknown, answered ERR_POLICY_DENIED with the forbidden text', async () => {
  const call = newCall();
  const r = assertRefused(
    await resolveTool({ ...call, name: 'files__nope' }, { catalogue: async () => catalogue([ENTRY]), cached: () => true, upstreams: new Map(), abilities: new Map() }),
    'tool.unknown',
    'ERR_POLICY_DENIED',
  );
  assert.equal(r.text, DENIED_TEXT);
  const rendered = renderRefusal(call, r);
  assert.equal(rendered.isError, true);
  assert.deepEqual(rendered._meta?.['bastion/error'], { code: 'ERR_POLICY_DENIED', ref: call.ref });
  assert.equal(call.record.decision.reason, 'tool.unknown');
  assert.equal(call.record.detail.code, 'ERR_POLICY_DENIED');
});

test('resolve: a miss in a partial (uncached) catalogue is retried once; a cached miss is final', async () => {
  let calls = 0;
  const second = await resolveTool(newCall(), {
    catalogue: async () => (++calls === 1 ? catalogue([]) : catalogue([ENTRY])),
    cached: () => false,
    upstreams: new Map([['files', UPSTREAM]]),
    abilities: new Map(),
  });
  assert.equal(calls, 2);
  assert.ok(!isRefused(second));
  assert.equal(second.upstream, UPSTREAM);
  assert.equal(second.isAbility, false);
  assert.equal(second.record.detail.upstream, 'files');

  calls = 0;
  const final = await resolveTool(newCall(), { catalogue: async () => (calls++, catalogue([])), cached: () => true, upstreams: new Map(), abilities: new Map() });
  assertRefused(final, 'tool.unknown', 'ERR_POLICY_DENIED');
  assert.equal(calls, 1);
});

test('resolve: an ability entry carries its config and no upstream', async () => {
  const ability = { name: 'weather', host: 'api.weather.example' } as unknown as ResolvedAbility;
  const entry: Entry<Tool> = { ...ENTRY, exposed: 'weather', upstream: ABILITIES_UPSTREAM, original: 'weather' };
  const r = await resolveTool({ ...newCall(), name: 'weather' }, { catalogue: async () => catalogue([entry]), cached: () => true, upstreams: new Map(), abilities: new Map([['weather', ability]]) });
  assert.ok(!isRefused(r));
  assert.equal(r.isAbility, true);
  assert.equal(r.ability, ability);
  assert.equal(r.upstream, undefined);
});

// ------------------------------------------------------------------ decide

test('decide: the policy request names agent, tool, upstream, arguments and digest; allow and approve go on', () => {
  let seen: PolicyRequest | undefined;
  const call = resolved({ path: '/w/a' });
  const approve: Decision = { effect: 'approve', reason: 'policy.approval', rule: 'p1' };
  const r = decide(call, { authorize: (req) => ((seen = req), approve) });
  assert.ok(!isRefused(r));
  assert.equal(r.decision, approve);
  assert.equal(call.record.decision, approve);
  assert.deepEqual(seen, { agent: 'bot', action: 'tools/call', resource: { kind: 'tool', id: 'files__read', upstream: 'files' }, args: { path: '/w/a' }, argsDigest: call.argsDigest, session: 's1', listing: false });
});

test('decide: a policy deny is refused like an unknown tool, with the policy reason recorded', () => {
  const call = resolved();
  const r = assertRefused(decide(call, { authorize: () => deny('policy.forbid', 'p7') }), 'policy.forbid', 'ERR_POLICY_DENIED');
  assert.equal(r.text, DENIED_TEXT);
  assert.equal(r.refused.decision.rule, 'p7');
});

test('decide: a policy evaluation error fails closed (policy.error), answered like a forbidden tool', () => {
  // The engine's own answer to an evaluation error...
  assertRefused(decide(resolved(), { authorize: () => deny('policy.error', 'cedar') }), 'policy.error', 'ERR_POLICY_DENIED');
  // ...and an engine that throws.
  const call = resolved();
  const r = assertRefused(
    decide(call, {
      authorize: () => {
        throw new Error('wasm trap');
      },
    }),
    'policy.error',
    'ERR_POLICY_DENIED',
  );
  assert.equal(r.text, DENIED_TEXT);
  assert.equal(call.record.decision.effect, 'deny');
  // Arguments Cedar cannot represent are a policy-stage refusal too: no schema detail leaks.
  assertRefused(decide(resolved(), { authorize: () => deny('policy.args_unrepresentable', 'context.args') }), 'policy.args_unrepresentable', 'ERR_POLICY_DENIED');
});

test('decide: a tool hidden by config `tools` (scope, cross-user) is refused after an allow', () => {
  for (const hidden of ['tool.internal_scope', 'tool.cross_user'] as const) {
    const r = assertRefused(decide(resolved(), { authorize: () => allow('policy.permit', 'p0'), hiddenReason: () => hidden }), hidden, 'ERR_POLICY_DENIED');
    assert.equal(r.text, DENIED_TEXT);
  }
});

// ------------------------------------------------------------------ validate

test('validate: arguments that fail the schema are args.schema, ERR_ARGS_INVALID, with the errors recorded', () => {
  const call = decided({ path: 3 });
  const r = assertRefused(validateArguments(call, { validate: () => ['/path must be string'] }), 'args.schema', 'ERR_ARGS_INVALID');
  assert.match(r.text, /\/path must be string/);
  assert.deepEqual(call.record.detail.schemaErrors, ['/path must be string']);
  const ok = decided({ path: '/w/a' });
  assert.equal(validateArguments(ok, { validate: () => null }), ok);
  // A validator that throws fails closed.
  assertRefused(
    validateArguments(decided(), {
      validate: () => {
        throw new Error('boom');
      },
    }),
    'args.schema',
    'ERR_ARGS_INVALID',
  );
});

// ------------------------------------------------------------------ path guard

test('path guard: a denied argument refuses with the guard reason, ERR_PATH_DENIED, the pointer recorded and never the value', async () => {
  const call = decided({ path: '/etc/shadow' });
  const verdict: PathVerdict = { decision: deny('path.outside', 'upstreams.files.workspace'), argument: { pointer: '/path', value: '/etc/shadow', kind: 'path' }, checked: 1 };
  const r = assertRefused(await guardPaths(call, { checkArguments: async () => verdict }), 'path.outside', 'ERR_PATH_DENIED');
  assert.match(r.text, /the path in \/path is not allowed/);
  assert.equal(call.record.detail.pathArgument, '/path');
  assert.ok(!JSON.stringify(call.record.detail).includes('/etc/shadow'));
  assert.ok(!r.text.includes('/etc/shadow'));
});

test('path guard: the guard sees the upstream scope, the original tool name, schema and arguments; abilities skip it', async () => {
  let seen: unknown[] = [];
  const call = decided({ path: '/w/a' });
  const r = await guardPaths(call, { checkArguments: async (...a) => ((seen = a), { decision: allow('path.allowed', 'paths'), checked: 1 }) });
  assert.equal(r, call);
  assert.deepEqual(seen, [UPSTREAM, 'read', SCHEMA, { path: '/w/a' }]);
  let asked = false;
  const ability = decided({ path: '/etc/shadow' }, undefined, { isAbility: true, upstream: undefined });
  assert.equal(await guardPaths(ability, { checkArguments: async () => ((asked = true), { decision: deny('path.denied', 'x'), checked: 1 }) }), ability);
  assert.equal(asked, false);
});

// ------------------------------------------------------------------ arguments for the record

test('noteArguments: with recordArguments redacted the record holds the arguments without credentials', () => {
  const fake = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
  const call = decided({ note: `token ${fake}` });
  const n = noteArguments(call, 'redacted');
  assert.ok(call.record.args !== undefined);
  assert.ok(!JSON.stringify(call.record.args).includes(fake));
  assert.equal(n.redacted(), n.redacted());
  const none = decided({ note: 'x' });
  noteArguments(none, 'none');
  assert.equal(none.record.args, undefined);
});

// ------------------------------------------------------------------ approval hold

function approval(reason: string | null = null): ApprovalRecord {
  return { id: 'ap1', agent: 'bot', user: 'alice', tool: 'files__read', argsDigest: '', argsPreview: '', status: 'pending', createdAt: 0, expiresAt: 0, decidedAt: null, decidedBy: null, reason };
}
const APPROVE: Decision = { effect: 'approve', reason: 'policy.approval', rule: 'p-approve' };

test('hold: an allow is not held', async () => {
  const call = noted();
  let held = false;
  assert.equal(await holdForApproval(call, { hold: async () => ((held = true), { status: 'approved', approval: approval() }) }), call);
  assert.equal(held, false);
});

test('hold: the approval is bound to agent, end user, tool and argument digest; a grant or claim goes on', async () => {
  let req: HoldRequest | undefined;
  const call = noted({ path: '/w/a' }, APPROVE);
  const r = await holdForApproval(call, { hold: async (q) => ((req = q), { status: 'approved', approval: approval() }) });
  assert.ok(!isRefused(r));
  assert.deepEqual([req?.agent, req?.user, req?.tool, req?.argsDigest], ['bot', 'alice', 'files__read', call.argsDigest]);
  assert.deepEqual(r.decision, { effect: 'approve', reason: 'approval.granted', rule: 'p-approve' });
  assert.equal(call.record.decision.reason, 'approval.granted');
  assert.equal(call.record.detail.approvalId, 'ap1');
  const claimed = await holdForApproval(noted({}, APPROVE), { hold: async () => ({ status: 'claimed', approval: approval() }) });
  assert.ok(!isRefused(claimed));
  assert.equal(claimed.decision.reason, 'approval.claimed');
});

test('hold: denied, timed out and cancelled approvals refuse with their reasons and codes', async () => {
  const cases: [HoldOutcome['status'], string, string, boolean][] = [
    ['denied', 'approval.denied', 'ERR_APPROVAL_DENIED', false],
    ['timeout', 'approval.timeout', 'ERR_APPROVAL_TIMEOUT', true],
    ['cancelled', 'approval.cancelled', 'ERR_APPROVAL_TIMEOUT', true],
  ];
  for (const [status, reason, code, timeout] of cases) {
    const call = noted({}, APPROVE);
    const r = assertRefused(await holdForApproval(call, { hold: async () => ({ status, approval: approval('not today') }) as HoldOutcome }), reason, code);
    assert.equal(r.refused.decision.rule, 'approval:ap1');
    renderRefusal(call, r);
    assert.equal(call.record.outcome, timeout ? 'timeout' : null, status);
    if (status === 'denied') assert.match(r.text, /denied this call: not today/);
  }
});

test('hold: an approval store error fails closed (store.error, ERR_STORE), the call does not run', async () => {
  const call = noted({}, APPROVE);
  const r = assertRefused(
    await holdForApproval(call, {
      hold: async () => {
        throw Object.assign(new Error('disk I/O error'), { code: 'ERR_STORE' });
      },
    }),
    'store.error',
    'ERR_STORE',
  );
  assert.ok(!r.text.includes('disk I/O'));
});

// ------------------------------------------------------------------ release pasted secrets

function stored(over: Partial<StoredPastedSecret> = {}): StoredPastedSecret {
  return { id: 'id-1', token: TOKEN, agent: 'bot', user: 'alice', fingerprint: 'f', rule: 'github-pat', hosts: ['api.example.com'], sealed: '{}', createdAt: 0, ...over } as StoredPastedSecret;
}

function pastedDeps(row: StoredPastedSecret | undefined | Error, usersToken = false): ReleaseDeps & { used: string[]; asked: string[] } {
  const used: string[] = [];
  const asked: string[] = [];
  return {
    used,
    asked,
    usersToken,
    pasted: {
      find: async (token: string) => {
        asked.push(token);
        if (row instanceof Error) throw row;
        return row === undefined ? undefined : { secret: row, value: new Secret(VALUE) };
      },
      markUsed: (id: string) => void used.push(id),
    },
  };
}

test('release: arguments without placeholders pass unchanged, nothing is asked', async () => {
  const deps = pastedDeps(stored());
  const r = await releasePasted(noted({ path: '/w/a' }), deps);
  assert.ok(!isRefused(r));
  assert.deepEqual(r.callArgs, { path: '/w/a' });
  assert.deepEqual(r.swapped, []);
  assert.deepEqual(deps.asked, []);
});

test('release: the owner\'s placeholder to one of its hosts is swapped, marked used, and only the token is recorded', async () => {
  const deps = pastedDeps(stored());
  const call = noted({ auth: `token ${PLACEHOLDER}`, list: [PLACEHOLDER] });
  const r = await releasePasted(call, deps);
  assert.ok(!isRefused(r));
  assert.deepEqual(r.callArgs, { auth: `token ${VALUE}`, list: [VALUE] });
  assert.deepEqual(r.swapped, [VALUE]);
  assert.deepEqual(deps.used, ['id-1']);
  assert.deepEqual(call.record.detail.placeholders, [{ token: TOKEN, rule: 'github-pat' }]);
  assert.ok(!JSON.stringify(call.record).includes(VALUE));
});

test('release: without a vault any placeholder fails closed (vault.unavailable, ERR_PLACEHOLDER_DENIED)', async () => {
  assertRefused(await releasePasted(noted({ a: PLACEHOLDER }), { usersToken: false }), 'vault.unavailable', 'ERR_PLACEHOLDER_DENIED');
});

test('release: with users.token configured, a pasted secret of an unverified user is user.unverified (ERR_USER_UNVERIFIED), its store never asked', async () => {
  const deps = pastedDeps(stored(), true);
  const call = noted({ a: PLACEHOLDER });
  const r = assertRefused(await releasePasted(call, deps), 'user.unverified', 'ERR_USER_UNVERIFIED');
  assert.equal(r.refused.decision.rule, 'users.token');
  assert.deepEqual(deps.asked, []);
  assert.deepEqual(call.record.detail.placeholders, [{ token: TOKEN }]);
  // The same user, proven by a token: released.
  const proven = await releasePasted(noted({ a: PLACEHOLDER }, undefined, { userVerified: true }), pastedDeps(stored(), true));
  assert.ok(!isRefused(proven));
  // Without users.token the asserted user is the owner.
  assert.ok(!isRefused(await releasePasted(noted({ a: PLACEHOLDER }), pastedDeps(stored(), false))));
});

test('release: each denial of the release rule refuses the whole call with its reason and ERR_PLACEHOLDER_DENIED', async () => {
  const cases: [string, StoredPastedSecret | undefined, Partial<ResolvedCall>][] = [
    ['placeholder.unknown', undefined, {}],
    ['release.foreign_user', stored({ user: 'mallory' }), {}],
    ['release.foreign_user', stored({ agent: 'other-agent' }), {}],
    ['release.foreign_user', stored(), { user: null }],
    ['release.unbound', stored({ hosts: [] }), {}],
    ['release.foreign_host', stored({ hosts: ['evil.example.net'] }), {}],
    // An upstream that declares no secretHosts sends a pasted secret nowhere.
    ['release.foreign_host', stored(), { upstream: { ...UPSTREAM, secretHosts: [] } as ResolvedUpstream }],
  ];
  for (const [reason, row, over] of cases) {
    const deps = pastedDeps(row);
    const call = noted({ a: PLACEHOLDER }, undefined, over);
    const r = assertRefused(await releasePasted(call, deps), reason, 'ERR_PLACEHOLDER_DENIED');
    assert.match(r.text, new RegExp(`\\(${reason.replace('.', '\\.')}\\)`));
    assert.equal(r.refused.decision.rule, 'upstreams.files.secretHosts', reason);
    assert.deepEqual(deps.used, [], reason);
    assert.ok(!JSON.stringify(call.record).includes(VALUE), reason);
  }
});

test('release: an ability releases only to its own host', async () => {
  const ability = { name: 'gh', host: 'api.example.com' } as unknown as ResolvedAbility;
  const over = { isAbility: true, ability, upstream: undefined };
  assert.ok(!isRefused(await releasePasted(noted({ a: PLACEHOLDER }, undefined, over), pastedDeps(stored()))));
  const r = assertRefused(await releasePasted(noted({ a: PLACEHOLDER }, undefined, { ...over, ability: { ...ability, host: 'other.example.com' } }), pastedDeps(stored())), 'release.foreign_host', 'ERR_PLACEHOLDER_DENIED');
  assert.equal(r.refused.decision.rule, 'abilities.gh.url');
});

test('release: a vault error fails closed (vault.error, ERR_PLACEHOLDER_DENIED)', async () => {
  assertRefused(await releasePasted(noted({ a: PLACEHOLDER }), pastedDeps(new Error('sqlite busy'))), 'vault.error', 'ERR_PLACEHOLDER_DENIED');
});

// ------------------------------------------------------------------ execute (ability) and screen

test('execute: an ability without its runner or config is ability.unavailable (ERR_UPSTREAM_UNAVAILABLE)', async () => {
  const call = { ...noted({}, undefined, { isAbility: true, upstream: undefined }), callArgs: {}, swapped: [] };
  const out = await runAbility(call, { runner: undefined, output: { maxResultBytes: 1000, redactSecrets: true } });
  assert.equal(out.isError, true);
  assert.equal(call.record.decision.reason, 'ability.unavailable');
  assert.equal(call.record.detail.code, 'ERR_UPSTREAM_UNAVAILABLE');
});

test('screen: swapped values are redacted from the result; an oversized result is withheld (ERR_RESULT_TOO_LARGE)', () => {
  const call = newCall();
  const known = setOfForms(redactionForms([VALUE]));
  const b64 = Buffer.from(VALUE).toString('base64');
  const out = screenToolResult(call, { content: [{ type: 'text', text: `raw ${VALUE} and ${b64}` }] }, { maxResultBytes: 100_000, redactSecrets: true }, known);
  const shown = JSON.stringify(out);
  assert.ok(!shown.includes(VALUE) && !shown.includes(b64), shown);
  assert.equal((call.record.detail.redactions as { count: number }).count >= 2, true);
  const big = screenToolResult(call, { content: [{ type: 'text', text: 'x'.repeat(2000) }] }, { maxResultBytes: 100, redactSecrets: true });
  assert.equal(big.isError, true);
  assert.equal(call.record.detail.code, 'ERR_RESULT_TOO_LARGE');
  assert.equal(call.record.outcome, 'error');
});

// ------------------------------------------------------------------ the table

test('every reason a tools/call stage can refuse with is a row of the kernel table', () => {
  const reasons = [
    'tool.unknown', 'tool.internal_scope', 'tool.cross_user', 'policy.forbid', 'policy.no_permit', 'policy.error', 'policy.invalid_request',
    'policy.unknown_agent', 'policy.args_unrepresentable', 'args.schema', 'path.denied', 'path.invalid', 'path.nul', 'path.outside',
    'path.relative', 'path.tilde', 'path.unresolvable', 'approval.denied', 'approval.timeout', 'approval.cancelled', 'store.error',
    'vault.unavailable', 'vault.error', 'user.unverified', 'placeholder.unknown', 'ability.unavailable', ...RELEASE_DENIALS,
  ];
  for (const r of reasons) assert.ok(isReason(r), r);
});

test('protocol requests (prompts, resources) refused at the policy stage answer alike: ERR_POLICY_DENIED, JSON-RPC -32003', () => {
  for (const reason of ['prompt.unknown', 'prompt.unknown_or_forbidden', 'resource.unknown', 'policy.forbid', 'policy.no_permit', 'policy.error', 'policy.invalid_request', 'policy.args_unrepresentable', 'policy.approval_unsupported', 'tool.unknown']) {
    const r = refusalOf(deny(reason, 'x'), 'tool');
    assert.equal(r.code, 'ERR_POLICY_DENIED', reason);
    assert.equal(r.rpc, RPC.DENIED, reason);
  }
  for (const reason of ['path.denied', 'path.outside']) assert.deepEqual([refusalOf(deny(reason, 'x'), 'tool').code, refusalOf(deny(reason, 'x'), 'tool').rpc], ['ERR_PATH_DENIED', RPC.DENIED]);
});
