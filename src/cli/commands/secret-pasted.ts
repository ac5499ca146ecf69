/**
 * `bastion secret pasted list | bind TOKEN --hosts H[,H...]`: credentials end
 * users pasted into model conversations (src/vault/pasted.ts). Metadata only:
 * token, owner, detector rule, hosts, times; never a value. `bind` gives a
 * pasted secret whose rule names no host (so it is unusable) the hosts it may
 * be sent to. Every bind is appended to the audit chain.
 */
import { userInfo } from 'node:os';
import { HostPattern } from '../../config/schema.ts';
import { allow } from '../../decision.ts';
import { PastedSecrets } from '../../vault/pasted.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { failure, openVault } from './secret.ts';

const HELP = `Usage:
  bastion secret pasted list [--user USER] [--agent NAME] [--json] [--config FILE]
  bastion secret pasted bind TOKEN --hosts HOST[,HOST...] [--config FILE]

list shows the credentials end users pasted to the model: the 12-character
token of <<SECRET_token>>, agent, user, the detector rule, hosts and times.
bind sets the hosts a pasted secret may be sent to (needed when its rule names
none). Values are never shown.
Exit codes: 0 ok, 2 usage, 3 config, 4 store, 5 no such token.`;

export const secretPasted: CliCommand = async (argv, io) => {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    io.stderr(`${HELP}\n`);
    return EXIT.USAGE;
  }
  const parsed = parseFlags(
    `secret pasted ${verb}`,
    HELP,
    verb === '--help' || verb === '-h' ? ['--help'] : rest,
    { config: { type: 'string', short: 'c' }, user: { type: 'string' }, agent: { type: 'string' }, hosts: { type: 'string' }, json: { type: 'boolean' } },
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (verb !== 'list' && verb !== 'bind') {
    io.stderr(`bastion secret pasted: unknown subcommand "${verb}"\n${HELP}\n`);
    return EXIT.USAGE;
  }
  let hosts: string[] = [];
  if (verb === 'bind') {
    if (positionals.length !== 1 || !/^[a-z2-7]{12}$/.test(positionals[0] as string)) {
      io.stderr('bastion secret pasted bind: exactly one TOKEN (the 12 characters of <<SECRET_token>>) is required\n');
      return EXIT.USAGE;
    }
    hosts = (values.hosts ?? '').split(',').map((h) => h.trim()).filter((h) => h.length > 0);
    const bad = hosts.find((h) => !HostPattern.safeParse(h).success);
    if (hosts.length === 0 || bad !== undefined) {
      io.stderr(`bastion secret pasted bind: --hosts ${bad !== undefined ? `has an invalid host ${JSON.stringify(bad)}` : 'is required'} (host, *.domain or IP literal, comma-separated)\n`);
      return EXIT.USAGE;
    }
  } else if (positionals.length > 0) {
    io.stderr('bastion secret pasted list: takes no arguments\n');
    return EXIT.USAGE;
  }
  const opened = await openVault('pasted', values.config, io, false);
  if (typeof opened === 'number') return opened;
  const { store, vault } = opened;
  try {
    if (verb === 'list') {
      const list = await store.listPastedSecrets({ ...(values.user !== undefined ? { user: values.user } : {}), ...(values.agent !== undefined ? { agent: values.agent } : {}) });
      const shown = list.map((p) => ({ token: p.token, agent: p.agent, user: p.user, rule: p.rule, hosts: p.hosts, createdAt: p.createdAt, lastUsedAt: p.lastUsedAt }));
      if (values.json) io.stdout(`${JSON.stringify({ pasted: shown })}\n`);
      else if (shown.length === 0) io.stdout('no pasted secrets\n');
      else for (const p of shown) io.stdout(`${p.token}  agent ${p.agent}  user ${JSON.stringify(p.user)}  ${p.rule}  hosts ${p.hosts.length > 0 ? p.hosts.join(',') : '(none: bind to use)'}  ${new Date(p.createdAt).toISOString()}\n`);
      return EXIT.OK;
    }
    const token = positionals[0] as string;
    const started = performance.now();
    if (!(await new PastedSecrets(store, vault).bind(token, hosts))) {
      io.stderr(`bastion secret pasted bind: no pasted secret ${token}\n`);
      return EXIT.NOT_FOUND;
    }
    let by = 'cli';
    try {
      by = `cli:${userInfo().username}`;
    } catch {
      // no passwd entry: keep "cli"
    }
    await store.appendAudit([
      {
        time: new Date().toISOString(),
        door: 'admin',
        agent: 'admin',
        method: 'secret.pasted.bind',
        target: token,
        decision: allow('secret.bound', 'cli'),
        outcome: 'ok',
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        detail: { by, hosts },
      },
    ]);
    io.stdout(`bound ${token} to ${hosts.join(', ')}\n`);
    return EXIT.OK;
  } catch (err) {
    return failure('pasted', err, io);
  } finally {
    await store.close();
  }
};
