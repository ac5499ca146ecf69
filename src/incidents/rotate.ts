/**
 * Emergency rotation (`bastion incident rotate AGENT`): every vault secret the
 * agent may use is marked for rotation (`secret_rotation_marks`, due until the
 * secret is rotated after the mark: `bastion secret rotate NAME`), the grace of
 * its superseded versions ends now (an old value it could have copied stops
 * working at once), each step is audited on the admin door and an admin alert
 * is raised per secret. Values are never read.
 */
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { allow } from '../decision.ts';
import { BastionError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import type { IncidentAlert } from './isolation.ts';
import { secretsOfAgent } from './snapshot.ts';

/** What happened to one secret. */
export interface RotationStep {
  readonly secret: string;
  /** False for a name the agent is granted but the vault does not hold (nothing to rotate). */
  readonly live: boolean;
  readonly marked: boolean;
  /** Superseded versions whose grace was cut short. */
  readonly graceEnded: number;
}

/** Options of {@link startEmergencyRotation}. */
export interface RotationOptions {
  readonly by: string;
  readonly reason: string;
  readonly now?: number;
  /** Raised once per marked secret (kind `incident.rotate`, severity `critical`); see {@link IncidentAlert}. */
  readonly alert?: IncidentAlert;
  /** Writes one audit record (default: appended to `store` directly, as the CLI does). */
  readonly audit?: (event: AuditEvent) => Promise<unknown>;
}

/**
 * Starts the emergency rotation of every secret `agentName` may use.
 * @throws BastionError `ERR_AGENT_UNKNOWN` (not in the config), `ERR_STORE`.
 */
export async function startEmergencyRotation(store: Store, config: ResolvedConfig, agentName: string, opts: RotationOptions): Promise<RotationStep[]> {
  const agent = config.agents.get(agentName);
  if (agent === undefined) throw new BastionError('ERR_AGENT_UNKNOWN', `no agent ${JSON.stringify(agentName).slice(0, 80)}`, { detail: { agent: agentName.slice(0, 64) } });
  const now = opts.now ?? Date.now();
  const audit = opts.audit ?? ((e: AuditEvent) => store.appendAudit([e]));
  const steps: RotationStep[] = [];
  for (const name of secretsOfAgent(agent)) {
    const started = performance.now();
    const s = await store.getSecretByName(name);
    if (s === undefined || s.revokedAt !== null) {
      steps.push({ secret: name, live: false, marked: false, graceEnded: 0 });
      continue;
    }
    await store.markSecretForRotation({ secret: name, agent: agentName, reason: opts.reason, by: opts.by, at: now });
    const graceEnded = await store.endSecretGrace(s.id, now);
    steps.push({ secret: name, live: true, marked: true, graceEnded });
    await audit({
      time: new Date(now).toISOString(),
      door: 'admin',
      agent: 'admin',
      method: 'incident.rotate',
      target: agentName,
      decision: allow('incident.rotate', 'incidents'),
      outcome: 'ok',
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      detail: { forAgent: agentName, secret: name, version: s.version, graceEnded, by: opts.by, reason: opts.reason },
    });
    opts.alert?.('incident.rotate', 'critical', agentName, `secret ${name} marked for emergency rotation (agent ${agentName})`, { secret: name, hosts: s.hosts, version: s.version, graceEnded, by: opts.by });
  }
  return steps;
}
