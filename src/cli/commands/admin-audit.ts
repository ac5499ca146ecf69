/**
 * The audit record of an admin change made with the CLI (vault secrets, peers,
 * identity keys): door `admin`, decision `allow` by rule `cli`, who ran it.
 */
import { userInfo } from 'node:os';
import { appendAuditEvents } from '../../audit/append.ts';
import { allow } from '../../decision.ts';
import type { AuditStore } from '../../audit/store.ts';

/** `cli:<os user>`, or `cli` when the user has no passwd entry. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/**
 * Appends the record of admin change `method` on `target`; `started` is a
 * `performance.now()` reading (ms), `detail` never holds a secret. Writes no
 * checkpoint (the CLI holds no signing key): the gateway's audit log signs the
 * checkpoint positions this skipped when it next opens or commits.
 * @throws BastionError `ERR_STORE`, `ERR_AUDIT_CONFLICT`.
 */
export async function appendAdminAudit(store: AuditStore, method: string, target: string, started: number, detail: Record<string, unknown>): Promise<void> {
  await appendAuditEvents(store, [
    {
      time: new Date().toISOString(),
      door: 'admin',
      agent: 'admin',
      method,
      target,
      decision: allow(method, 'cli'),
      outcome: 'ok',
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      detail: { by: cliActor(), ...detail },
    },
  ]);
}
