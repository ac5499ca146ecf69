/**
 * `bastion peers add | list | token | remove`: the agent-to-agent peers this
 * instance exchanges signed messages with (see docs/a2a.md). Works on the store
 * directly, like `bastion secret`; a running server sees a change on the next
 * message. Every change is appended to the audit chain on the admin door,
 * without a token.
 *
 * Tokens: `add` prints the peer's inbound token once (only its SHA-256 digest is
 * stored); the outbound token (the one the peer's admin printed for us) is read
 * from an environment variable or standard input, never from argv, and stored
 * sealed with the vault's key-encryption key.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { assertPeerName, assertPeerToken, MAX_PEER_TOKEN_LENGTH, parsePeerUrl, peerInfo, pinnedKeys, registerPeer, sealPeerToken, type PeerInfo } from '../../a2a/peers.ts';
import { loadConfig } from '../../config/load.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { isBastionError } from '../../errors.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/store.ts';
import { Secret } from '../../util/secret.ts';
import { loadKek, MASTER_KEY_ENV, type Kek } from '../../vault/kek.ts';
import { Vault } from '../../vault/vault.ts';
import { parseFlags } from '../args.ts';
import { appendAdminAudit, type CliCheckpointSigner } from './admin-audit.ts';
import { kekKeyProtector } from '../../vault/key-protector.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const EXIT_CODES = 'Exit codes: 0 ok, 1 refused (a peer has the name), 2 usage (bad name, flag or value), 3 config or vault key, 4 store, 5 no such peer.';

const HELP = `Usage:
  bastion peers add NAME --url URL --sender ID (--jwks URL | --key FILE)
                    [--outbound-token-env VAR | --outbound-token-stdin] [--json] [--config FILE]
  bastion peers token NAME (--outbound-token-env VAR | --outbound-token-stdin) [--config FILE]
  bastion peers list [--json] [--config FILE]
  bastion peers remove NAME [--config FILE]

add registers another Bastion instance as peer NAME and prints the token it
must present to this instance (its outbound token). The token is shown once;
only a SHA-256 digest is stored.
  --url        the peer's inbound endpoint, e.g. https://b.example/a2a/inbound
  --sender     the peer's sender id: its identity.issuer
  --jwks       where the peer's public keys are published (its /.well-known/jwks.json)
  --key        a file holding the peer's public key(s) as a JWK or JWKS (pinned)
  --outbound-token-env VAR   the token the peer's admin printed for this instance,
                             read from the environment variable VAR
  --outbound-token-stdin     the same, read from standard input
Without an outbound token the peer can send to this instance but not receive;
set it later with 'bastion peers token NAME'.
token sets or replaces the outbound token of NAME.
list shows name, URL, sender, keys and whether an outbound token is set (never a token).
remove deletes NAME: its token stops working at once.
${EXIT_CODES}`;

type Verb = 'add' | 'token' | 'list' | 'remove';


/** A checkpoint signer when the command loaded the KEK (it seals the audit signing key); else none: the gateway signs the skipped position later. */
function signerOf(opened: { readonly config: ResolvedConfig; readonly store: Store; readonly kek?: Kek }): CliCheckpointSigner | undefined {
  return opened.kek === undefined ? undefined : { store: opened.store, keyProtector: kekKeyProtector(opened.kek), checkpointEvery: opened.config.audit.checkpointEvery };
}

/** Loads the config (lenient) and opens the store; with `needKek`, also loads the KEK and checks it opens the vault. */
async function open(verb: Verb, configFlag: string | undefined, io: CliIO, needKek: boolean): Promise<{ config: ResolvedConfig; store: Store; kek?: Kek } | number> {
  const say = (text: string): void => io.stderr(`bastion peers ${verb}: ${text}\n`);
  let config: ResolvedConfig;
  try {
    ({ config } = await loadConfig(resolveConfigPath(configFlag, io), { env: io.env, secrets: 'lenient' }));
  } catch (err) {
    say(isBastionError(err) ? err.message : 'cannot load config');
    return EXIT.CONFIG;
  }
  let kek: Kek | undefined;
  if (needKek) {
    try {
      kek = await loadKek({ env: io.env[MASTER_KEY_ENV], keyFile: config.vault.keyFile }, { create: true });
    } catch (err) {
      say(isBastionError(err) ? err.message : 'cannot load the vault key');
      return EXIT.CONFIG;
    }
  }
  let store: Store;
  try {
    store = await openStore(config.store);
  } catch (err) {
    say(isBastionError(err) ? err.message : 'cannot open store');
    return EXIT.STORE;
  }
  if (kek !== undefined) {
    try {
      // Opening the vault proves this is the KEK the store was sealed with: a token sealed under another would never open.
      await Vault.open(store, kek, { rotationGraceMs: config.vault.rotationGraceMs });
    } catch (err) {
      await store.close();
      say(isBastionError(err, 'ERR_VAULT_DECRYPT') ? `the vault cannot be opened with this key-encryption key: is ${MASTER_KEY_ENV} or vault.keyFile the one the vault was created with?` : isBastionError(err) ? err.message : 'cannot open the vault');
      return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.CONFIG;
    }
  }
  return { config, store, ...(kek ? { kek } : {}) };
}

/** The outbound token from `--outbound-token-env VAR` or standard input; undefined when neither flag is given. */
async function outboundToken(verb: Verb, values: { 'outbound-token-env'?: string; 'outbound-token-stdin'?: boolean }, io: CliIO): Promise<Secret | undefined | number> {
  const say = (text: string): number => {
    io.stderr(`bastion peers ${verb}: ${text}\n`);
    return EXIT.USAGE;
  };
  const envName = values['outbound-token-env'];
  if (envName !== undefined && values['outbound-token-stdin'] === true) return say('give one of --outbound-token-env and --outbound-token-stdin');
  let token: Secret | undefined;
  if (envName !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(envName)) return say('--outbound-token-env must name an environment variable');
    const v = io.env[envName];
    if (v === undefined || v === '') return say(`--outbound-token-env: ${envName} is unset or empty`);
    token = new Secret(v.trim());
  } else if (values['outbound-token-stdin'] === true) {
    if (io.stdin === undefined) return say('--outbound-token-stdin: no standard input');
    let buf: Buffer;
    try {
      buf = await io.stdin();
    } catch {
      return say(`--outbound-token-stdin: cannot read standard input (at most ${MAX_PEER_TOKEN_LENGTH} characters)`);
    }
    try {
      token = new Secret(buf.toString('utf8').trim());
    } finally {
      buf.fill(0);
    }
    if (token.reveal() === '') return say('--outbound-token-stdin: nothing on standard input');
  }
  if (token === undefined) return undefined;
  try {
    assertPeerToken(token, envName !== undefined ? '--outbound-token-env' : '--outbound-token-stdin');
  } catch (err) {
    return say(err instanceof Error ? err.message : 'bad token');
  }
  return token;
}

function oneName(verb: Verb, positionals: readonly string[], io: CliIO): string | number {
  const [name] = positionals;
  if (name === undefined || positionals.length !== 1) {
    io.stderr(`bastion peers ${verb}: exactly one peer NAME is required\nRun 'bastion peers --help' for usage.\n`);
    return EXIT.USAGE;
  }
  try {
    assertPeerName(name);
  } catch (err) {
    io.stderr(`bastion peers ${verb}: ${err instanceof Error ? err.message : 'bad peer name'}\n`);
    return EXIT.USAGE;
  }
  return name;
}

function line(p: PeerInfo): string {
  const keys = 'jwksUrl' in p.keys ? `jwks ${p.keys.jwksUrl}` : `pinned ${p.keys.pinned.join(',')}`;
  return `${p.name}  ${p.url}  sender ${JSON.stringify(p.sender)}  ${keys}  outbound token ${p.outboundToken ? 'set' : 'not set'}  added ${p.createdAt}`;
}

const FLAGS = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  url: { type: 'string' },
  sender: { type: 'string' },
  jwks: { type: 'string' },
  key: { type: 'string' },
  'outbound-token-env': { type: 'string' },
  'outbound-token-stdin': { type: 'boolean' },
} as const;

export const peers: CliCommand = async (argv, io) => {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    io.stderr(`${HELP}\n`);
    return EXIT.USAGE;
  }
  if (verb === '--help' || verb === '-h') {
    io.stdout(`${HELP}\n`);
    return EXIT.OK;
  }
  if (verb !== 'add' && verb !== 'token' && verb !== 'list' && verb !== 'remove') {
    io.stderr(`bastion peers: unknown subcommand "${verb}"\n${HELP}\n`);
    return EXIT.USAGE;
  }
  // A token typed on the command line would land in shell history: refused before anything else (and not echoed).
  if (rest.some((a) => a === '--outbound-token' || a.startsWith('--outbound-token='))) {
    io.stderr(`bastion peers ${verb}: --outbound-token is not accepted: a token on the command line lands in shell history and the process list; use --outbound-token-env VAR or --outbound-token-stdin\n`);
    return EXIT.USAGE;
  }
  const parsed = parseFlags(`peers ${verb}`, HELP, rest, FLAGS, io, verb === 'list' ? 0 : 1);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const allowed: Record<Verb, readonly string[]> = {
    add: ['config', 'json', 'url', 'sender', 'jwks', 'key', 'outbound-token-env', 'outbound-token-stdin'],
    token: ['config', 'outbound-token-env', 'outbound-token-stdin'],
    list: ['config', 'json'],
    remove: ['config'],
  };
  const stray = Object.keys(values).find((k) => k !== 'help' && !allowed[verb].includes(k));
  if (stray !== undefined) {
    io.stderr(`bastion peers ${verb}: --${stray} is not an option of ${verb}\nRun 'bastion peers --help' for usage.\n`);
    return EXIT.USAGE;
  }

  if (verb === 'list') {
    const opened = await open(verb, values.config, io, false);
    if (typeof opened === 'number') return opened;
    try {
      const list = (await opened.store.listPeers()).map(peerInfo);
      if (values.json === true) io.stdout(`${JSON.stringify({ peers: list })}\n`);
      else if (list.length === 0) io.stdout('no peers\n');
      else for (const p of list) io.stdout(`${line(p)}\n`);
      return EXIT.OK;
    } catch (err) {
      io.stderr(`bastion peers list: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await opened.store.close();
    }
  }

  const name = oneName(verb, positionals, io);
  if (typeof name === 'number') return name;

  if (verb === 'remove') {
    const opened = await open(verb, values.config, io, false);
    if (typeof opened === 'number') return opened;
    const started = performance.now();
    try {
      if (!(await opened.store.removePeer(name))) {
        io.stderr(`bastion peers remove: no peer named ${name}\n`);
        return EXIT.NOT_FOUND;
      }
      await appendAdminAudit(opened.store, 'peer.remove', name, started, {});
      io.stdout(`removed peer ${name}\n`);
      return EXIT.OK;
    } catch (err) {
      io.stderr(`bastion peers remove: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await opened.store.close();
    }
  }

  if (verb === 'token') {
    if (values['outbound-token-env'] === undefined && values['outbound-token-stdin'] !== true) {
      io.stderr('bastion peers token: --outbound-token-env VAR or --outbound-token-stdin is required\n');
      return EXIT.USAGE;
    }
    const token = await outboundToken(verb, values, io);
    if (typeof token === 'number') return token;
    const opened = await open(verb, values.config, io, true);
    if (typeof opened === 'number') return opened;
    const started = performance.now();
    try {
      if (!(await opened.store.setPeerOutboundToken(name, sealPeerToken(opened.kek as Kek, name, token as Secret)))) {
        io.stderr(`bastion peers token: no peer named ${name}\n`);
        return EXIT.NOT_FOUND;
      }
      await appendAdminAudit(opened.store, 'peer.token', name, started, {}, signerOf(opened));
      io.stdout(`outbound token of peer ${name} set\n`);
      return EXIT.OK;
    } catch (err) {
      io.stderr(`bastion peers token: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await opened.store.close();
    }
  }

  // add: every flag is checked before the config, the store and stdin are touched.
  const say = (text: string): number => {
    io.stderr(`bastion peers add: ${text}\n`);
    return EXIT.USAGE;
  };
  if (values.url === undefined) return say('--url is required (the peer\'s inbound endpoint, e.g. https://b.example/a2a/inbound)');
  if (values.sender === undefined) return say('--sender is required (the peer\'s identity.issuer)');
  if ((values.jwks === undefined) === (values.key === undefined)) return say('exactly one of --jwks URL and --key FILE is required');
  let publicKeys: unknown;
  if (values.key !== undefined) {
    try {
      publicKeys = JSON.parse(readFileSync(resolve(io.cwd, values.key), 'utf8'));
    } catch {
      return say('--key must name a readable file holding a JWK or JWKS (JSON)');
    }
  }
  try {
    parsePeerUrl(values.url, '--url');
    if (values.jwks !== undefined) parsePeerUrl(values.jwks, '--jwks');
    if (values.sender.length === 0 || values.sender.length > 512) throw new RangeError('--sender must be 1-512 characters');
    if (publicKeys !== undefined) await pinnedKeys(publicKeys);
  } catch (err) {
    return say(err instanceof Error ? err.message : 'invalid arguments');
  }
  const token = await outboundToken(verb, values, io);
  if (typeof token === 'number') return token;
  const opened = await open(verb, values.config, io, token !== undefined);
  if (typeof opened === 'number') return opened;
  const started = performance.now();
  try {
    const added = await registerPeer(opened.store, opened.kek, {
      name,
      url: values.url,
      sender: values.sender,
      ...(values.jwks !== undefined ? { jwksUrl: values.jwks } : { publicKeys }),
      ...(token !== undefined ? { outboundToken: token } : {}),
    });
    if (added === 'exists') {
      io.stderr(`bastion peers add: a peer named ${name} exists; remove it first\n`);
      return EXIT.FAILED;
    }
    const info = peerInfo(added.peer);
    await appendAdminAudit(opened.store, 'peer.add', name, started, { url: info.url, sender: info.sender, keys: info.keys, outboundToken: info.outboundToken }, signerOf(opened));
    const inbound = added.inboundToken.reveal();
    if (values.json === true) {
      io.stdout(`${JSON.stringify({ peer: info, inboundToken: inbound })}\n`);
    } else {
      io.stdout(
        `added peer ${name} (${info.url})\n\n` +
          `The token ${name} presents to this instance is shown now and never again (only a SHA-256 digest is stored):\n\n` +
          `    ${inbound}\n\n` +
          `Give it to the admin of ${name}: they register this instance with it as the outbound token, e.g.\n` +
          `    BASTION_PEER_TOKEN=<the token> bastion peers add <name for this instance> --url <this instance>/a2a/inbound \\\n` +
          `      --sender ${JSON.stringify(opened.config.identity.issuer)} --jwks <this instance>/.well-known/jwks.json --outbound-token-env BASTION_PEER_TOKEN\n` +
          (info.outboundToken ? '' : `\nNo outbound token was given: ${name} cannot receive from this instance until 'bastion peers token ${name}'.\n`),
      );
    }
    return EXIT.OK;
  } catch (err) {
    if (err instanceof RangeError) return say(err.message);
    io.stderr(`bastion peers add: ${isBastionError(err) ? err.message : 'store error'}\n`);
    return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.INTERNAL;
  } finally {
    await opened.store.close();
  }
};
