/**
 * The audit record of an admin change made with the CLI (vault secrets, peers,
 * identity keys): door `admin`, decision `allow` by rule `cli`, who ran it.
 */
import { userInfo } from 'node:os';
import { appendAuditEvents } from '../../audit/append.ts';
import { AuditLog, type KeyProtector } from '../../audit/log.ts';
import { allow } from '../../decision.ts';
import type { AuditStore } from '../../audit/store.ts';
import type { KeyStore } from '../../identity/key-store.ts';

/** What lets the CLI sign a checkpoint over its record: the vault key (sealing the audit signing key) and the config's checkpoint interval. */
export interface CliCheckpointSigner {
  readonly store: AuditStore & KeyStore;
  readonly keyProtector: KeyProtector;
  readonly checkpointEvery: number;
}

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
 * `performance.now()` reading (ms), `detail` never holds a secret. With
 * `signer` (the commands that hold the vault key), the record goes through an
 * audit log that signs a checkpoint over it, so `audit verify` passes on a store
 * only the CLI has written yet; without it no checkpoint is written, and the
 * gateway's audit log signs the positions this skipped when it next opens or
 * commits.
 * @throws BastionError `ERR_STORE`, `ERR_AUDIT_CONFLICT`, `ERR_AUDIT_WRITE`.
 */
export async function appendAdminAudit(store: AuditStore, method: string, target: string, started: number, detail: Record<string, unknown>, signer?: CliCheckpointSigner): Promise<void> {
  const event = {
    time: new Date().toISOString(),
    door: 'admin' as const,
    agent: 'admin',
    method,
    target,
    decision: allow(method, 'cli'),
    outcome: 'ok' as const,
    durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    detail: { by: cliActor(), ...detail },
  };
  if (signer === undefined) {
    await appendAuditEvents(store, [event]);
    return;
  }
  const log = await AuditLog.open(signer.store, { checkpointEvery: signer.checkpointEvery, keyProtector: signer.keyProtector });
  try {
    await log.append(event);
  } finally {
    await log.close();
  }
}
