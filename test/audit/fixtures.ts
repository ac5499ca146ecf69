/** Shared helpers for audit and store tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../../src/audit/types.ts';

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
