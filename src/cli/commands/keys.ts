/**
 * `bastion keys list | rotate`: Bastion's identity keys (Ed25519), which sign
 * requests to tools (RFC 9421), per-call tokens and agent-to-agent messages,
 * and are published at `/.well-known/jwks.json`. Works on the store directly; a
 * running server picks up a rotation within seconds. Rotation is audited.
 */
import { loadVaultKey } from '../../vault/kek.ts';
import { isBastionError } from '../../errors.ts';
import { IdentityKeys, type IdentityKeyInfo } from '../../identity/keys.ts';
import { kekKeyProtector } from '../../vault/key-protector.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { appendAdminAudit } from './admin-audit.ts';
import { openConfiguredStore } from './config-store.ts';

const HELP = `Usage:
  bastion keys list [--json] [--config FILE]
  bastion keys rotate [--json] [--config FILE]

list shows every identity key: kid (RFC 7638 thumbprint), created, status
(current: signs; grace: still published in the JWKS; expired: no longer
published, so signatures by it stop verifying) and the end of its grace.
rotate makes a new current key; the previous one stays published for
identity.rotationGraceMs. Needs the vault key (BASTION_MASTER_KEY or vault.keyFile).
Exit codes: 0 ok, 2 usage, 3 config, 4 store or vault key.`;

function line(k: IdentityKeyInfo): string {
  const grace = k.graceUntil === null ? '' : `  ${k.status === 'expired' ? 'unpublished since' : 'published until'} ${new Date(k.graceUntil).toISOString()}`;
  return `${k.kid}  ${k.status.padEnd(7)}  created ${new Date(k.createdAt).toISOString()}${grace}`;
}

export const keys: CliCommand = async (argv, io) => {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    io.stderr(`${HELP}\n`);
    return EXIT.USAGE;
  }
  const parsed = parseFlags(`keys ${verb}`, HELP, verb === '--help' || verb === '-h' ? ['--help'] : rest, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, io, 0);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (verb !== 'list' && verb !== 'rotate') {
    io.stderr(`bastion keys: unknown subcommand "${verb}"\n${HELP}\n`);
    return EXIT.USAGE;
  }
  const opened = await openConfiguredStore(`keys ${verb}`, values.config, io);
  if (typeof opened === 'number') return opened;
  const { config, store } = opened;
  try {
    if (verb === 'list') {
      const ring = IdentityKeys.view(store, { rotationGraceMs: config.identity.rotationGraceMs });
      const list = await ring.list();
      if (values.json) io.stdout(`${JSON.stringify({ keys: list })}\n`);
      else for (const k of list) io.stdout(`${line(k)}\n`);
      return EXIT.OK;
    }
    let protector;
    try {
      protector = kekKeyProtector(await loadVaultKey(config, io.env));
    } catch (err) {
      io.stderr(`bastion keys rotate: ${isBastionError(err) ? err.message : 'cannot load the vault key'}\n`);
      return EXIT.STORE;
    }
    const started = performance.now();
    const ring = IdentityKeys.view(store, { rotationGraceMs: config.identity.rotationGraceMs, protector });
    const before = (await ring.list()).find((k) => k.status === 'current');
    const created = await ring.rotate();
    await appendAdminAudit(
      store,
      'keys.rotate',
      created.kid,
      started,
      { kid: created.kid, ...(before ? { previous: before.kid, graceUntil: created.createdAt + config.identity.rotationGraceMs } : {}) },
      { store, keyProtector: protector, checkpointEvery: config.audit.checkpointEvery },
    );
    if (values.json) io.stdout(`${JSON.stringify({ kid: created.kid, previous: before?.kid ?? null })}\n`);
    else io.stdout(`new identity key ${created.kid}${before ? `; ${before.kid} stays published until ${new Date(created.createdAt + config.identity.rotationGraceMs).toISOString()}` : ''}\n`);
    return EXIT.OK;
  } catch (err) {
    io.stderr(`bastion keys ${verb}: ${isBastionError(err) ? err.message : 'store error'}\n`);
    return EXIT.STORE;
  } finally {
    await store.close();
  }
};
