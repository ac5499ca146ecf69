/**
 * `bastion oauth list | revoke`: the accounts end users connected through
 * per-user OAuth (config `oauth.providers`, docs/oauth.md). Works on the store
 * directly, like `bastion secret`, with the vault key (the tokens are sealed
 * under a key the vault derives). Never prints a token.
 *
 * `revoke USER PROVIDER` asks the provider to revoke the user's tokens
 * (RFC 7009) and deletes them here in any case; the user's next call through
 * that upstream gets a link to connect again. Audited on the admin door.
 */
import { isBastionError } from '../../errors.ts';
import { openUserOAuth } from '../../server/gateway.ts';
import { parseFlags } from '../args.ts';
import { appendAdminAudit } from './admin-audit.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { openVault } from './secret.ts';

const HELP = `Usage: bastion oauth list [--user USER] [--json] [--config FILE]
       bastion oauth revoke USER PROVIDER [--config FILE]

list    the connected accounts: user, provider, last updated (never a token)
revoke  revoke USER's tokens at PROVIDER (RFC 7009) and delete them here; the
        user's next call gets a link to connect again
Exit codes: 0 ok, 1 the provider refused or could not be reached (the tokens are deleted here anyway),
2 usage, 3 config or vault key, 4 store, 5 no such provider or no connected account.`;

/** `bastion oauth …`. */
export const oauth: CliCommand = async (argv, io) => {
  const parsed = parseFlags('oauth', HELP, argv, { config: { type: 'string', short: 'c' }, user: { type: 'string' }, json: { type: 'boolean' } }, io, 3);
  if (typeof parsed === 'number') return parsed;
  const [verb, ...rest] = parsed.positionals;
  if (verb !== 'list' && verb !== 'revoke') {
    io.stderr(`bastion oauth: expected list or revoke\n${HELP}\n`);
    return EXIT.USAGE;
  }
  if (verb === 'revoke' && rest.length !== 2) {
    io.stderr('bastion oauth revoke: expected USER PROVIDER\n');
    return EXIT.USAGE;
  }
  if (verb === 'list' && rest.length !== 0) {
    io.stderr('bastion oauth list: takes no arguments (use --user)\n');
    return EXIT.USAGE;
  }
  const opened = await openVault(`oauth ${verb}`, parsed.values.config, io, false);
  if (typeof opened === 'number') return opened;
  const { config, store, vault } = opened;
  try {
    if (verb === 'list') {
      const user = parsed.values.user;
      const rows = await store.listUserTokenSets(user === undefined ? {} : { user });
      if (parsed.values.json === true) io.stdout(`${JSON.stringify(rows.map((r) => ({ user: r.user, provider: r.provider, updatedAt: new Date(r.updatedAt).toISOString() })))}\n`);
      else if (rows.length === 0) io.stdout('no connected accounts\n');
      else for (const r of rows) io.stdout(`${r.user}\t${r.provider}\t${new Date(r.updatedAt).toISOString()}\n`);
      return EXIT.OK;
    }
    const [user, provider] = rest as [string, string];
    if (!config.oauth.providers.has(provider)) {
      io.stderr(`bastion oauth revoke: no provider ${JSON.stringify(provider.slice(0, 64))} under oauth.providers\n`);
      return EXIT.NOT_FOUND;
    }
    const started = performance.now();
    const client = openUserOAuth(config, store, vault);
    const r = await client.revoke({ user, provider });
    if (!r.ok) {
      io.stderr(`bastion oauth revoke: ${r.reason}\n`);
      return EXIT.FAILED;
    }
    await appendAdminAudit(store, 'oauth.revoke', `${provider}:${user}`, started, { provider: r.provider, hadTokens: r.hadTokens }, opened.signer);
    if (!r.hadTokens) {
      io.stdout(`${user} has no connected ${provider} account\n`);
      return EXIT.NOT_FOUND;
    }
    io.stdout(`revoked ${user}'s ${provider} tokens (provider: ${r.provider}); deleted here\n`);
    return r.provider === 'revoked' || r.provider === 'not_attempted' ? EXIT.OK : EXIT.FAILED;
  } catch (err) {
    io.stderr(`bastion oauth ${verb}: ${isBastionError(err) ? err.message : 'failed'}\n`);
    return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.FAILED;
  } finally {
    await store.close();
  }
};
