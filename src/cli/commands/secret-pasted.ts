/**
 * `bastion secret pasted list | bind TOKEN --hosts H[,H...]`: credentials end
 * users pasted into model conversations (src/vault/pasted.ts). Metadata only:
 * token, owner, detector rule, hosts, times; never a value. `bind` gives a
 * pasted secret the hosts it may be sent to: needed when its detector rule
 * names none, or only hosts in a namespace anyone can register in (a Shopify
 * token's `*.myshopify.com`), which the Public Suffix List check drops. The
 * hosts pass the same check (src/vault/host-binding.ts). This command is the
 * only way to bind; every bind is appended to the audit chain.
 */
import { HostPattern } from '../../config/schema.ts';
import { PastedSecrets } from '../../vault/pasted.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { appendAdminAudit } from './admin-audit.ts';
import { checkCliHosts, failure, openVault } from './secret.ts';

const HELP = `Usage:
  bastion secret pasted list [--user USER] [--agent NAME] [--json] [--config FILE]
  bastion secret pasted bind TOKEN --hosts HOST[,HOST...] [--unsafe-allow-shared-suffix] [--config FILE]

list shows the credentials end users pasted to the model: the 12-character
token of <<SECRET_token>>, agent, user, the detector rule, hosts and times.
bind sets the hosts a pasted secret may be sent to, replacing its hosts; TOKEN
is the 12 characters or the whole <<SECRET_token>>. Needed when the rule names
no host, or only hosts anyone can create names under (a Shopify token's
*.myshopify.com): until then the secret is never sent (placeholder.unbound).
Hosts are checked against the Public Suffix List (ICANN and PRIVATE sections):
public suffixes, wildcards over or covering a suffix (*.myshopify.com,
*.amazonaws.com) and hosts under a shared suffix (mystore.myshopify.com) are
refused; --unsafe-allow-shared-suffix accepts the last kind, for a host you
control (audited). Values are never shown.
Exit codes: 0 ok, 1 a host refused, 2 usage, 3 config, 4 store, 5 no such token.`;

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
    {
      config: { type: 'string', short: 'c' },
      user: { type: 'string' },
      agent: { type: 'string' },
      hosts: { type: 'string' },
      json: { type: 'boolean' },
      'unsafe-allow-shared-suffix': { type: 'boolean' },
    },
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
  let token = '';
  const unsafeAllowSharedSuffix = values['unsafe-allow-shared-suffix'] === true;
  let overridden: { host: string; overridden: string }[] = [];
  if (verb === 'bind') {
    const m = positionals.length === 1 ? /^(?:<<SECRET_([a-z2-7]{12})>>|([a-z2-7]{12}))$/.exec(positionals[0] as string) : null;
    if (m === null) {
      io.stderr('bastion secret pasted bind: exactly one TOKEN (the 12 characters of <<SECRET_token>>, or the whole placeholder) is required\n');
      return EXIT.USAGE;
    }
    token = (m[1] ?? m[2]) as string;
    hosts = (values.hosts ?? '').split(',').map((h) => h.trim()).filter((h) => h.length > 0);
    const bad = hosts.find((h) => !HostPattern.safeParse(h).success);
    if (hosts.length === 0 || bad !== undefined) {
      io.stderr(`bastion secret pasted bind: --hosts ${bad !== undefined ? `has an invalid host ${JSON.stringify(bad.slice(0, 256))}` : 'is required'} (host, *.domain or IP literal, comma-separated)\n`);
      return EXIT.USAGE;
    }
    const checked = checkCliHosts('secret pasted bind', hosts, unsafeAllowSharedSuffix, io);
    if (typeof checked === 'number') return checked;
    overridden = checked;
  } else if (unsafeAllowSharedSuffix) {
    io.stderr('bastion secret pasted list: --unsafe-allow-shared-suffix is for bind\n');
    return EXIT.USAGE;
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
    const started = performance.now();
    const before = await store.getPastedSecretByToken(token);
    if (before === undefined || !(await new PastedSecrets(store, vault).bind(token, hosts, { unsafeAllowSharedSuffix }))) {
      io.stderr(`bastion secret pasted bind: no pasted secret ${token}\n`);
      return EXIT.NOT_FOUND;
    }
    const after = (await store.getPastedSecretByToken(token))?.hosts ?? hosts;
    await appendAdminAudit(store, 'secret.pasted.bind', token, started, {
      forAgent: before.agent,
      forUser: before.user,
      rule: before.rule,
      previousHosts: before.hosts,
      hosts: after,
      ...(overridden.length > 0 ? { unsafeAllowSharedSuffix: overridden } : {}),
    }, opened.signer);
    io.stdout(`bound ${token} to ${after.join(', ')}\n`);
    return EXIT.OK;
  } catch (err) {
    return failure('pasted', err, io);
  } finally {
    await store.close();
  }
};
