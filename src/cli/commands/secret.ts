/**
 * `bastion secret add | list | rotate | revoke | placeholder`: the vault from
 * the command line (see docs/vault.md). Works on the store directly, like
 * `bastion approvals`: whoever can read the store and the key-encryption key is
 * an administrator already. A running server notices changes on its next
 * lookup (the store's vault generation).
 *
 * Values are write-only: read from standard input only (never argv, which
 * lands in shell history and the process list), never printed. Every change is
 * appended to the audit chain on the admin door, without the value.
 */
import { loadConfig } from '../../config/load.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { isBastionError } from '../../errors.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/store.ts';
import { Secret } from '../../util/secret.ts';
import { loadKek, MASTER_KEY_ENV } from '../../vault/kek.ts';
import { checkHostBinding, hostBindingMessage, isUsableStoredHost, type HostBindingRefusal } from '../../vault/host-binding.ts';
import { assertSecretName, MAX_SECRET_VALUE_BYTES, normalizeSecretMeta, Vault, type VaultSecretInfo } from '../../vault/vault.ts';
import { parseFlags } from '../args.ts';
import { appendAdminAudit, type CliCheckpointSigner } from './admin-audit.ts';
import { kekKeyProtector } from '../../vault/key-protector.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const EXIT_CODES = `Exit codes: 0 ok, 1 refused (name exists; agent unknown or not granted; a host the Public Suffix List check refuses),
2 usage (bad name, flag or value),
3 config or vault key (missing, malformed, or not the key the vault was sealed with), 4 store, 5 no such secret.`;

const HELP = {
  add: `Usage: bastion secret add NAME [--hosts HOST,...] [--header NAME [--format TEMPLATE]]
                         [--unsafe-allow-shared-suffix] [--config FILE] < value

Stores a secret. The value is read from standard input (one trailing newline is
dropped; on a terminal, typing is not echoed). It is never taken from the command
line: a value in argv lands in shell history and the process list.

  --hosts     comma-separated hosts the value may be sent to: api.github.com,*.slack.com
              (default: secrets.NAME.hosts in the config; one of the two is required).
              Refused (exit 1): a public suffix (com, co.uk), a wildcard anyone can
              create names under (*.com, *.github.io, *.s3.amazonaws.com,
              *.amazonaws.com) and a host under a shared suffix (someone.github.io):
              the Public Suffix List, ICANN and PRIVATE sections.
  --unsafe-allow-shared-suffix
              accept exact hosts that are or lie under a shared suffix
              (mystore.myshopify.com) because you control them; audited.
              Wildcards stay refused.
  --header    the HTTP header the value is sent in, e.g. Authorization
  --format    the header value with {} for the secret, e.g. "Bearer {}" (needs --header)

Example: printf %s "$GITHUB_TOKEN" | bastion secret add github --hosts api.github.com --header Authorization --format "Bearer {}"
${EXIT_CODES}`,
  list: `Usage: bastion secret list [--json] [--config FILE]

Lists the live secrets: name, hosts, version, created, last used. Never a value.
${EXIT_CODES}`,
  rotate: `Usage: bastion secret rotate NAME [--config FILE] < new-value

Stores a new value (read from standard input, as for add) as the next version.
The previous value and its placeholders stay valid for vault.rotationGraceMs;
agents get new placeholders (bastion secret placeholder).
${EXIT_CODES}`,
  revoke: `Usage: bastion secret revoke NAME [--config FILE]

Revokes a secret: every version and placeholder stops working at once. The name
can be added again (it gets new placeholders).
${EXIT_CODES}`,
  placeholder: `Usage: bastion secret placeholder NAME --agent AGENT [--config FILE]

Prints the placeholder AGENT uses for the secret's current version. AGENT must be
in the config with NAME in agents.AGENT.secrets.
${EXIT_CODES}`,
} as const;

type Verb = keyof typeof HELP;

const AGENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface Opened {
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly vault: Vault;
  /** Signs a checkpoint over the command's audit record (the KEK seals the audit signing key). */
  readonly signer: CliCheckpointSigner;
}

/** Loads the config (lenient: unresolved references do not matter here), the KEK and the store, and opens the vault. */
export async function openVault(verb: string, configFlag: string | undefined, io: CliIO, createKey: boolean): Promise<Opened | number> {
  let config: ResolvedConfig;
  try {
    ({ config } = await loadConfig(resolveConfigPath(configFlag, io), { env: io.env, secrets: 'lenient' }));
  } catch (err) {
    io.stderr(`bastion secret ${verb}: ${isBastionError(err) ? err.message : 'cannot load config'}\n`);
    return EXIT.CONFIG;
  }
  let kek;
  try {
    kek = await loadKek({ env: io.env[MASTER_KEY_ENV], keyFile: config.vault.keyFile }, { create: createKey });
  } catch (err) {
    io.stderr(`bastion secret ${verb}: ${isBastionError(err) ? err.message : 'cannot load the vault key'}\n`);
    return EXIT.CONFIG;
  }
  let store: Store;
  try {
    store = await openStore(config.store);
  } catch (err) {
    io.stderr(`bastion secret ${verb}: ${isBastionError(err) ? err.message : 'cannot open store'}\n`);
    return EXIT.STORE;
  }
  try {
    const signer: CliCheckpointSigner = { store, keyProtector: kekKeyProtector(kek), checkpointEvery: config.audit.checkpointEvery };
    return { config, store, vault: await Vault.open(store, kek, { rotationGraceMs: config.vault.rotationGraceMs }), signer };
  } catch (err) {
    await store.close();
    return failure(verb, err, io);
  }
}

/** Reports an error of a vault operation and returns its exit code. Messages are the vault's own, which never hold a value. */
export function failure(verb: string, err: unknown, io: CliIO): number {
  const say = (text: string): void => io.stderr(`bastion secret ${verb}: ${text}\n`);
  if (isBastionError(err, 'ERR_VAULT_SECRET_EXISTS')) {
    say(`${err.message}; rotate it, or revoke it first`);
    return EXIT.FAILED;
  }
  if (isBastionError(err, 'ERR_VAULT_SECRET_UNKNOWN')) {
    say(err.message);
    return EXIT.NOT_FOUND;
  }
  if (isBastionError(err, 'ERR_VAULT_DECRYPT')) {
    say(`the vault cannot be opened with this key-encryption key: is ${MASTER_KEY_ENV} or vault.keyFile the one the vault was created with?`);
    return EXIT.CONFIG;
  }
  if (isBastionError(err, 'ERR_VAULT_KEY')) {
    say(err.message);
    return EXIT.CONFIG;
  }
  if (isBastionError(err, 'ERR_STORE')) {
    say(err.message);
    return EXIT.STORE;
  }
  if (err instanceof RangeError || err instanceof TypeError) {
    say(err.message);
    return EXIT.USAGE;
  }
  say('internal error');
  return EXIT.INTERNAL;
}

/**
 * The Public Suffix List check of `hosts` (src/vault/host-binding.ts) for a CLI
 * command: writes one line per refused host and returns `EXIT.FAILED`, or
 * returns the hosts accepted only by the override (for the audit record).
 * Malformed hosts are left to {@link normalizeSecretMeta} (a usage error).
 */
export function checkCliHosts(
  command: string,
  hosts: readonly string[],
  unsafeAllowSharedSuffix: boolean,
  io: CliIO,
): number | { host: string; overridden: HostBindingRefusal }[] {
  const overridden: { host: string; overridden: HostBindingRefusal }[] = [];
  let refused = false;
  for (const h of hosts) {
    const c = checkHostBinding(h, { unsafeAllowSharedSuffix });
    if (!c.ok && c.reason !== 'host.invalid') {
      io.stderr(`bastion ${command}: host refused: ${hostBindingMessage(c, h)}\n`);
      refused = true;
    } else if (c.ok && c.overridden !== undefined) overridden.push({ host: c.host, overridden: c.overridden });
  }
  return refused ? EXIT.FAILED : overridden;
}

/** Refuses a value on the command line before anything else is parsed (so the value is not echoed in a usage error). */
function refuseValueFlag(verb: Verb, argv: readonly string[], io: CliIO): number | undefined {
  if (argv.some((a) => a === '--value' || a.startsWith('--value='))) {
    io.stderr(
      `bastion secret ${verb}: --value is not accepted: a value on the command line lands in shell history and the process list.\n` +
        `Pipe it on standard input instead, e.g. printf %s "$TOKEN" | bastion secret ${verb} NAME ...\n`,
    );
    return EXIT.USAGE;
  }
  return undefined;
}

/** Exactly one NAME positional; an extra positional is not echoed (it may be a value typed in the wrong place). */
function oneName(verb: Verb, positionals: readonly string[], io: CliIO): string | number {
  const [name] = positionals;
  if (name === undefined || positionals.length !== 1) {
    io.stderr(
      `bastion secret ${verb}: exactly one secret NAME is required${positionals.length > 1 ? ' (values are read from standard input, never from arguments)' : ''}\n` +
        `Run 'bastion secret ${verb} --help' for usage.\n`,
    );
    return EXIT.USAGE;
  }
  try {
    assertSecretName(name);
  } catch (err) {
    io.stderr(`bastion secret ${verb}: ${err instanceof Error ? err.message : 'bad secret name'}\n`);
    return EXIT.USAGE;
  }
  return name;
}

/** Reads the value from standard input: one trailing `\n` (or `\r\n`) dropped, UTF-8, non-empty, bounded. */
async function readValue(verb: Verb, io: CliIO): Promise<Secret | number> {
  const say = (text: string): number => {
    io.stderr(`bastion secret ${verb}: ${text}\n`);
    return EXIT.USAGE;
  };
  if (io.stdin === undefined) return say('no standard input to read the value from');
  let buf: Buffer;
  try {
    buf = await io.stdin();
  } catch (err) {
    return say(err instanceof RangeError ? `the value must be at most ${MAX_SECRET_VALUE_BYTES} bytes` : 'cannot read the value from standard input');
  }
  try {
    let end = buf.length;
    if (end > 0 && buf[end - 1] === 0x0a) {
      end--;
      if (end > 0 && buf[end - 1] === 0x0d) end--;
    }
    if (end === 0) return say(`no value on standard input; pipe it in, e.g. printf %s "$TOKEN" | bastion secret ${verb} NAME ...`);
    if (end > MAX_SECRET_VALUE_BYTES) return say(`the value must be at most ${MAX_SECRET_VALUE_BYTES} bytes`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf.subarray(0, end));
    } catch {
      return say('the value on standard input is not UTF-8');
    }
    return new Secret(text);
  } finally {
    buf.fill(0);
  }
}


function iso(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `bastion secret add NAME [--hosts ...] [--header H [--format F]]`, value on stdin. */
export const secretAdd: CliCommand = async (argv, io) => {
  const refused = refuseValueFlag('add', argv, io);
  if (refused !== undefined) return refused;
  const parsed = parseFlags(
    'secret add',
    HELP.add,
    argv,
    {
      config: { type: 'string', short: 'c' },
      hosts: { type: 'string' },
      header: { type: 'string' },
      format: { type: 'string' },
      'unsafe-allow-shared-suffix': { type: 'boolean' },
    },
    io,
    Number.MAX_SAFE_INTEGER,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const name = oneName('add', positionals, io);
  if (typeof name === 'number') return name;
  if (values.format !== undefined && values.header === undefined) {
    io.stderr('bastion secret add: --format needs --header\n');
    return EXIT.USAGE;
  }
  // Check the flags before the config, the store and stdin: a typo should not cost typing the value.
  const flagHosts = values.hosts?.split(',').map((h) => h.trim()).filter((h) => h !== '');
  if (flagHosts !== undefined && flagHosts.length === 0) {
    io.stderr('bastion secret add: --hosts must name at least one host\n');
    return EXIT.USAGE;
  }
  const unsafeFlag = values['unsafe-allow-shared-suffix'] === true;
  if (flagHosts !== undefined) {
    const checked = checkCliHosts('secret add', flagHosts, unsafeFlag, io);
    if (typeof checked === 'number') return checked;
  }
  try {
    if (flagHosts !== undefined) normalizeSecretMeta({ hosts: flagHosts, header: values.header, format: values.format, unsafeAllowSharedSuffix: unsafeFlag });
  } catch (err) {
    return failure('add', err, io);
  }
  const opened = await openVault('add', values.config, io, true);
  if (typeof opened === 'number') return opened;
  const { config, store, vault } = opened;
  try {
    const declared = config.secrets.get(name);
    const hosts = flagHosts ?? declared?.hosts;
    if (hosts === undefined) {
      io.stderr(`bastion secret add: --hosts is required (or declare secrets.${name}.hosts in the config)\n`);
      return EXIT.USAGE;
    }
    // The config's unsafeAllowSharedSuffix covers the config's hosts only; --hosts needs the flag.
    const unsafeAllowSharedSuffix = unsafeFlag || (flagHosts === undefined && declared?.unsafeAllowSharedSuffix === true);
    const checked = checkCliHosts('secret add', hosts, unsafeAllowSharedSuffix, io);
    if (typeof checked === 'number') return checked;
    const meta = { hosts: [...hosts], header: values.header, format: values.format, unsafeAllowSharedSuffix };
    normalizeSecretMeta(meta);
    if ((await vault.list()).some((s) => s.name === name)) {
      // Reported before the value is asked for; vault.add checks again under the store's lock.
      io.stderr(`bastion secret add: vault: a secret named ${name} exists; rotate it, or revoke it first\n`);
      return EXIT.FAILED;
    }
    const value = await readValue('add', io);
    if (typeof value === 'number') return value;
    const started = performance.now();
    const info = await vault.add(name, value, meta);
    await appendAdminAudit(store, 'secret.add', name, started, {
      secretId: info.id,
      version: info.version,
      hosts: info.hosts,
      ...(checked.length > 0 ? { unsafeAllowSharedSuffix: checked } : {}),
    }, opened.signer);
    io.stdout(`added ${name} (version 1) for ${info.hosts.join(', ')}${info.header === undefined ? '' : `, sent in ${info.header}`}\n`);
    if (declared === undefined) {
      io.stderr(`note: ${name} is not declared under secrets in the config; declare it and list it in agents.AGENT.secrets so an agent may use it\n`);
    }
    return EXIT.OK;
  } catch (err) {
    return failure('add', err, io);
  } finally {
    await store.close();
  }
};

/** `bastion secret list [--json]`. */
export const secretList: CliCommand = async (argv, io) => {
  const parsed = parseFlags('secret list', HELP.list, argv, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const opened = await openVault('list', values.config, io, true);
  if (typeof opened === 'number') return opened;
  const { config, store, vault } = opened;
  try {
    const list = await vault.list();
    if (values.json === true) {
      const secrets = list.map((s) => ({ ...s, description: config.secrets.get(s.name)?.description ?? null }));
      io.stdout(`${JSON.stringify({ secrets })}\n`);
      return EXIT.OK;
    }
    if (list.length === 0) io.stdout('no secrets\n');
    else io.stdout(table(list));
    for (const s of list) {
      const unused = s.hosts.filter((h) => !isUsableStoredHost(h));
      if (unused.length > 0) io.stdout(`${s.name}: hosts refused by the Public Suffix List check, not used: ${unused.join(', ')} (revoke and add again with safe hosts)\n`);
    }
    const missing = [...config.secrets.keys()].filter((n) => !list.some((s) => s.name === n));
    if (missing.length > 0) io.stdout(`declared in the config but not stored: ${missing.join(', ')}\n`);
    return EXIT.OK;
  } catch (err) {
    return failure('list', err, io);
  } finally {
    await store.close();
  }
};

function table(list: readonly VaultSecretInfo[]): string {
  const rows = [
    ['NAME', 'HOSTS', 'VERSION', 'CREATED', 'LAST USED'],
    ...list.map((s) => [s.name, s.hosts.join(','), String(s.version), iso(s.createdAt), iso(s.lastUsedAt)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** `bastion secret rotate NAME`, new value on stdin. */
export const secretRotate: CliCommand = async (argv, io) => {
  const refused = refuseValueFlag('rotate', argv, io);
  if (refused !== undefined) return refused;
  const parsed = parseFlags('secret rotate', HELP.rotate, argv, { config: { type: 'string', short: 'c' } }, io, Number.MAX_SAFE_INTEGER);
  if (typeof parsed === 'number') return parsed;
  const name = oneName('rotate', parsed.positionals, io);
  if (typeof name === 'number') return name;
  const opened = await openVault('rotate', parsed.values.config, io, false);
  if (typeof opened === 'number') return opened;
  const { config, store, vault } = opened;
  try {
    await vault.info(name); // an unknown name is reported before the value is asked for
    const value = await readValue('rotate', io);
    if (typeof value === 'number') return value;
    const started = performance.now();
    const info = await vault.rotate(name, value);
    const graceUntil = (info.rotatedAt ?? Date.now()) + config.vault.rotationGraceMs;
    await appendAdminAudit(store, 'secret.rotate', name, started, { secretId: info.id, version: info.version, graceUntil: new Date(graceUntil).toISOString() }, opened.signer);
    io.stdout(`rotated ${name} to version ${info.version}; version ${info.version - 1} stays valid until ${iso(graceUntil)}\n`);
    return EXIT.OK;
  } catch (err) {
    return failure('rotate', err, io);
  } finally {
    await store.close();
  }
};

/** `bastion secret revoke NAME`. */
export const secretRevoke: CliCommand = async (argv, io) => {
  const parsed = parseFlags('secret revoke', HELP.revoke, argv, { config: { type: 'string', short: 'c' } }, io, Number.MAX_SAFE_INTEGER);
  if (typeof parsed === 'number') return parsed;
  const name = oneName('revoke', parsed.positionals, io);
  if (typeof name === 'number') return name;
  const opened = await openVault('revoke', parsed.values.config, io, false);
  if (typeof opened === 'number') return opened;
  const { store, vault } = opened;
  try {
    const started = performance.now();
    const info = await vault.info(name);
    await vault.revoke(name);
    await appendAdminAudit(store, 'secret.revoke', name, started, { secretId: info.id, version: info.version }, opened.signer);
    io.stdout(`revoked ${name}; its placeholders no longer resolve\n`);
    return EXIT.OK;
  } catch (err) {
    return failure('revoke', err, io);
  } finally {
    await store.close();
  }
};

/** `bastion secret placeholder NAME --agent AGENT`: prints the placeholder alone on a line. */
export const secretPlaceholder: CliCommand = async (argv, io) => {
  const parsed = parseFlags(
    'secret placeholder',
    HELP.placeholder,
    argv,
    { config: { type: 'string', short: 'c' }, agent: { type: 'string' } },
    io,
    Number.MAX_SAFE_INTEGER,
  );
  if (typeof parsed === 'number') return parsed;
  const name = oneName('placeholder', parsed.positionals, io);
  if (typeof name === 'number') return name;
  const agent = parsed.values.agent;
  if (agent === undefined || !AGENT_NAME.test(agent)) {
    io.stderr('bastion secret placeholder: --agent AGENT is required (1-64 of A-Z a-z 0-9 _ -)\n');
    return EXIT.USAGE;
  }
  const opened = await openVault('placeholder', parsed.values.config, io, true);
  if (typeof opened === 'number') return opened;
  const { config, store, vault } = opened;
  try {
    const granted = config.agents.get(agent);
    if (granted === undefined) {
      io.stderr(`bastion secret placeholder: agent ${agent} is not in the config\n`);
      return EXIT.FAILED;
    }
    if (!granted.secrets.includes(name)) {
      io.stderr(`bastion secret placeholder: agent ${agent} is not granted secret ${name} (add it to agents.${agent}.secrets)\n`);
      return EXIT.FAILED;
    }
    const started = performance.now();
    const placeholder = await vault.placeholder(name, agent);
    const info = await vault.info(name);
    await appendAdminAudit(store, 'secret.placeholder', name, started, { secretId: info.id, version: info.version, forAgent: agent }, opened.signer);
    io.stdout(`${placeholder}\n`);
    return EXIT.OK;
  } catch (err) {
    return failure('placeholder', err, io);
  } finally {
    await store.close();
  }
};
