/**
 * Helpers of the anomaly tests: committed records with chosen fields and
 * times, rules parsed by the real schema, and an engine whose alerts, audit
 * records and isolations are collected.
 */
import type { AdminAlert } from '../../src/alerts/notifier.ts';
import { AnomalyRuleSchema, type AnomalyRule } from '../../src/anomaly/config.ts';
import { AnomalyEngine, type AnomalyEngineOptions } from '../../src/anomaly/engine.ts';
import type { AuditEvent, AuditRecord } from '../../src/audit/types.ts';

/** Monday 2026-12-07 12:00:00 UTC. */
export const T0 = Date.parse('2026-12-07T12:00:00.000Z');

let lastSeq = 0;

/** A committed record (a fresh seq) of agent `a1` calling `files__read` at T0 + `atS` seconds, with `over` applied. */
export function rec(atS: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    seq: ++lastSeq,
    prevHash: '0'.repeat(64),
    hash: 'f'.repeat(64),
    time: new Date(T0 + atS * 1000).toISOString(),
    door: 'tool',
    agent: 'a1',
    session: 's1',
    method: 'tools/call',
    target: 'files__read',
    decision: { effect: 'allow', reason: 'policy.permit', rule: 'p' },
    outcome: 'ok',
    durationMs: 1,
    ...over,
  };
}

/** A rule named `name`, parsed (defaults applied) by the config schema. */
export function rule(name: string, body: Record<string, unknown>): AnomalyRule {
  return { ...AnomalyRuleSchema.parse(body), name };
}

/** An engine over `rules`, collecting what it sends. */
export function harness(
  rules: readonly AnomalyRule[],
  extra: Partial<AnomalyEngineOptions> = {},
): { engine: AnomalyEngine; alerts: AdminAlert[]; audits: AuditEvent[]; isolations: [string, string, string][]; feed: (...records: AuditRecord[]) => Promise<void> } {
  const alerts: AdminAlert[] = [];
  const audits: AuditEvent[] = [];
  const isolations: [string, string, string][] = [];
  const engine = new AnomalyEngine({
    rules: new Map(rules.map((r) => [r.name, r])),
    notify: (a) => alerts.push(a),
    audit: (e) => audits.push(e),
    isolate: async (agent, reason, by) => {
      isolations.push([agent, reason, by]);
    },
    now: () => T0,
    ...extra,
  });
  const feed = async (...records: AuditRecord[]): Promise<void> => {
    for (const r of records) engine.observe(r);
    await engine.idle();
  };
  return { engine, alerts, audits, isolations, feed };
}
