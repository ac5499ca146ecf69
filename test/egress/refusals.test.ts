/**
 * Every refusal the network door can produce maps through the kernel's closed
 * table (src/door/reasons.ts): the proxy's own reasons, the guard's (`ssrf.*`,
 * `policy.*`, `egress.error`, built from the classifier's reasons) and the
 * release rule's. Pins the status and code each is answered with on the
 * network door (docs/network-door.md's error table), so a change of a public
 * code is deliberate.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { codeOf, isReason, SSRF_ADDRESS_CLASSES, statusOf } from '../../src/door/reasons.ts';
import { refusalOf } from '../../src/door/refusal.ts';
import { PROXY_REFUSALS } from '../../src/egress/proxy.ts';
import { classifyTarget } from '../../src/egress/ssrf-classify.ts';
import { RELEASE_DENIALS } from '../../src/vault/release.ts';
import VECTORS_JSON from './ssrf-vectors.json' with { type: 'json' };

/** Status and code per reason, as docs/network-door.md documents them for the network door. */
const EXPECTED: Record<string, readonly [number, string]> = {
  'auth.missing': [407, 'ERR_AUTH_REQUIRED'],
  'auth.invalid': [407, 'ERR_AUTH_INVALID'],
  'agent.isolated': [403, 'ERR_AGENT_ISOLATED'],
  'request.https_absolute_form': [400, 'ERR_EGRESS_DENIED'],
  'request.not_absolute_form': [400, 'ERR_EGRESS_DENIED'],
  'request.bad_base_url': [400, 'ERR_EGRESS_DENIED'],
  'request.bad_authority': [400, 'ERR_EGRESS_DENIED'],
  'request.misdirected': [421, 'ERR_EGRESS_DENIED'],
  'request.not_origin_form': [400, 'ERR_EGRESS_DENIED'],
  'request.bad_target': [400, 'ERR_EGRESS_DENIED'],
  'request.upgrade_unsupported': [501, 'ERR_EGRESS_DENIED'],
  'request.aborted': [400, 'ERR_EGRESS_DENIED'],
  'request.header_too_large': [431, 'ERR_EGRESS_DENIED'],
  'request.header_timeout': [408, 'ERR_EGRESS_DENIED'],
  'request.malformed': [400, 'ERR_EGRESS_DENIED'],
  'body.too_large': [413, 'ERR_BODY_TOO_LARGE'],
  'body.timeout': [408, 'ERR_BODY_TIMEOUT'],
  'body.encoded': [415, 'ERR_EGRESS_DENIED'],
  'placeholder.unknown': [403, 'ERR_EGRESS_PLACEHOLDER'],
  'dlp.credential': [403, 'ERR_EGRESS_DLP'],
  'dlp.error': [503, 'ERR_EGRESS_DLP'],
  'vault.unavailable': [503, 'ERR_EGRESS_DENIED'],
  'egress.no_ca': [503, 'ERR_CA'],
  'ca.issue_failed': [503, 'ERR_CA'],
  'tls.handshake_failed': [502, 'ERR_EGRESS_UPSTREAM'],
  'tunnel.idle': [504, 'ERR_EGRESS_UPSTREAM'],
  'upstream.connect_failed': [502, 'ERR_EGRESS_UPSTREAM'],
  'upstream.reset': [502, 'ERR_EGRESS_UPSTREAM'],
  'upstream.refused': [502, 'ERR_EGRESS_UPSTREAM'],
  'upstream.tls': [502, 'ERR_EGRESS_UPSTREAM'],
  'upstream.timeout': [504, 'ERR_EGRESS_UPSTREAM'],
  'upstream.error': [502, 'ERR_EGRESS_UPSTREAM'],
  'upstream.unknown_encoding': [502, 'ERR_EGRESS_UPSTREAM'],
  // The guard's policy refusals.
  'policy.no_permit': [403, 'ERR_EGRESS_DENIED'],
  'policy.forbid': [403, 'ERR_EGRESS_DENIED'],
  'policy.unknown_agent': [403, 'ERR_EGRESS_DENIED'],
  'policy.approval_unsupported': [403, 'ERR_EGRESS_DENIED'],
  'policy.error': [500, 'ERR_POLICY_EVALUATION'],
  'policy.invalid_request': [500, 'ERR_POLICY_EVALUATION'],
  'egress.error': [503, 'ERR_EGRESS_DENIED'],
};

/** The classifier's refusal reasons as written (`classifyTarget`) and after resolution (`resolveAndClassify`). */
const CLASSIFIER_REASONS = ['url.invalid', 'url.scheme', 'host.special', 'host.single_label', 'dns.unresolvable', 'dns.no_address', ...SSRF_ADDRESS_CLASSES.map((c) => `address.${c}`)];

test('every reason the proxy decides is a row, answered with its documented status and code', () => {
  for (const reason of PROXY_REFUSALS) {
    assert.ok(isReason(reason), reason);
    const expected = EXPECTED[reason];
    assert.ok(expected, `${reason} has no documented status and code`);
    assert.deepEqual([statusOf(reason, 'network'), codeOf(reason, 'network')], expected, reason);
  }
});

test("the guard's policy and error refusals are rows, answered as documented", () => {
  for (const reason of ['policy.no_permit', 'policy.forbid', 'policy.unknown_agent', 'policy.approval_unsupported', 'policy.error', 'policy.invalid_request', 'egress.error']) {
    const r = refusalOf({ effect: 'deny', reason, rule: 'x' }, 'network');
    assert.deepEqual([r.status, r.code], EXPECTED[reason], reason);
  }
});

test('every ssrf.* reason the guard builds from the classifier is a row: 403 ERR_EGRESS_SSRF', () => {
  for (const r of CLASSIFIER_REASONS) {
    const reason = `ssrf.${r}`;
    assert.ok(isReason(reason), reason);
    assert.deepEqual([statusOf(reason, 'network'), codeOf(reason, 'network')], [403, 'ERR_EGRESS_SSRF'], reason);
  }
  // The classifier over the project's own vectors produces no reason outside that list.
  const seen = new Set<string>();
  for (const v of VECTORS_JSON as { input: string; kind: string }[]) {
    const input = v.kind === 'url' ? v.input : `http://${v.kind === 'ip' && v.input.includes(':') ? `[${v.input}]` : v.input}/`;
    const c = classifyTarget(input);
    if (c.verdict === 'deny') seen.add(c.reason);
  }
  assert.ok(seen.size >= 5, `the vectors exercised ${seen.size} reasons`);
  for (const r of seen) assert.ok(CLASSIFIER_REASONS.includes(r), `classifier reason ${r} is not in the list`);
});

test("every denial of the release rule is answered with the network door's placeholder code", () => {
  for (const reason of RELEASE_DENIALS) assert.deepEqual([statusOf(reason, 'network'), codeOf(reason, 'network')], [403, 'ERR_EGRESS_PLACEHOLDER'], reason);
  // The other doors keep the kernel's code.
  for (const reason of RELEASE_DENIALS) assert.equal(codeOf(reason, 'tool'), 'ERR_PLACEHOLDER_DENIED', reason);
});

test('no prefix mapping of reasons is left in the network door', () => {
  for (const file of ['proxy.ts', 'guard.ts', 'dlp.ts']) {
    const src = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'egress', file), 'utf8');
    assert.doesNotMatch(src, /reason\.startsWith\(|statusFor\(/, file);
  }
});
