/** Shared helpers for audit and store tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chainRecord, type VerifyResult } from '../../src/audit/chain.ts';
import type { AuditEvent, AuditRecord } from '../../src/audit/types.ts';

/** A plausible tool-door event, distinct per `i`. */
export function sampleEvent(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString(),
    door: 'tool',
    agent: i % 3 === 0 ? null : `agent-${i % 5}`,
    session: i % 2 === 0 ? `s-${i}` : undefined,
    method: 'tools/call',
    target: `fs__read_file`,
    decision: { effect: i % 7 === 0 ? 'deny' : 'allow', reason: i % 7 === 0 ? 'policy.forbid' : 'policy.permit', rule: `p${i % 4}` },
    argsDigest: 'ab'.repeat(32),
    outcome: i % 7 === 0 ? 'denied' : 'ok',
    durationMs: i % 50,
    detail: { n: i, flags: ['x', 'y'], nested: { 'é': 'ü', empty: null } },
    ...overrides,
  };
}

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'bastion-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `events` chained in order from the genesis (seq 1, 2, …), as the audit log would store them. */
export function chainEvents(events: readonly AuditEvent[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const e of events) out.push(chainRecord(out.at(-1), e));
  return out;
}

/** Asserts that a chain verification failed with ERR_AUDIT_CHAIN_BROKEN at `seq` for `reason`. */
export function expectBroken(result: VerifyResult, seq: number, reason: string): void {
  assert.equal(result.ok, false, 'expected a broken chain');
  if (result.ok) return;
  assert.equal(result.code, 'ERR_AUDIT_CHAIN_BROKEN');
  assert.equal(result.reason, reason);
  assert.equal(result.seq, seq);
}
