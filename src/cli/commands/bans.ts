/**
 * `bastion bans list | lift USER`: the model door's temporary bans. Works on the
 * store directly (no running server needed; a running one sees the change on
 * the user's next request). Every lift is appended to the audit chain.
 */
import { userInfo } from 'node:os';
import { allow } from '../../decision.ts';
import { isBastionError } from '../../errors.ts';
import type { BanRecord } from '../../model/ban-store.ts';
import type { Store } from '../../store/store.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { openConfiguredStore } from './config-store.ts';

const HELP = `Usage:
  bastion bans list [--all] [--user USER] [--json] [--config FILE]
  bastion bans lift USER [--agent NAME] [--json] [--config FILE]

list shows the bans in force (--all: every ban, lifted and expired too):
id, user, agent, level (offence count), until, rule.
lift ends the bans in force of USER (of one agent with --agent); a lifted ban
no longer counts toward escalation.
Exit codes: 0 ok, 2 usage, 3 config, 4 store, 5 no ban in force for USER.`;

async function openStore(command: string, configFlag: string | undefined, io: CliIO): Promise<Store | number> {
  const opened = await openConfiguredStore(command, configFlag, io);
  return typeof opened === 'number' ? opened : opened.store;
}

function line(b: BanRecord, now: number): string {
  const state = b.liftedAt !== null ? `lifted by ${b.liftedBy ?? '?'}` : b.until > now ? `until ${new Date(b.until).toISOString()}` : 'expired';
  return `${String(b.id).padStart(5)}  ${JSON.stringify(b.user)}  agent ${b.agent}  level ${b.level}  ${state}  ${b.rule}`;
}

export const bans: CliCommand = async (argv, io) => {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    io.stderr(`${HELP}\n`);
    return EXIT.USAGE;
  }
  const parsed = parseFlags(
    `bans ${verb}`,
    HELP,
    verb === '--help' || verb === '-h' ? ['--help'] : rest,
    { config: { type: 'string', short: 'c' }, all: { type: 'boolean' }, user: { type: 'string' }, agent: { type: 'string' }, json: { type: 'boolean' } },
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (verb === 'list') {
    if (positionals.length > 0) {
      io.stderr('bastion bans list: takes no arguments (filter with --user USER)\n');
      return EXIT.USAGE;
    }
    const store = await openStore('bans list', values.config, io);
    if (typeof store === 'number') return store;
    try {
      const now = Date.now();
      const list = await store.listBans({ ...(values.all ? {} : { activeAt: now }), ...(values.user !== undefined ? { user: values.user } : {}) });
      if (values.json) io.stdout(`${JSON.stringify({ bans: list })}\n`);
      else if (list.length === 0) io.stdout(values.all ? 'no bans\n' : 'no bans in force\n');
      else for (const b of list) io.stdout(`${line(b, now)}\n`);
      return EXIT.OK;
    } catch (err) {
      io.stderr(`bastion bans list: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await store.close();
    }
  }
  if (verb === 'lift') {
    const user = positionals[0];
    if (user === undefined || positionals.length > 1) {
      io.stderr('bastion bans lift: exactly one USER is required\n');
      return EXIT.USAGE;
    }
    const store = await openStore('bans lift', values.config, io);
    if (typeof store === 'number') return store;
    let by = 'cli';
    try {
      by = `cli:${userInfo().username}`;
    } catch {
      // no passwd entry: keep "cli"
    }
    const started = performance.now();
    try {
      const lifted = await store.liftBans(user, { at: Date.now(), by, ...(values.agent !== undefined ? { agent: values.agent } : {}) });
      if (lifted === 0) {
        io.stderr(`bastion bans lift: no ban in force for user ${JSON.stringify(user)}${values.agent !== undefined ? ` of agent ${values.agent}` : ''}\n`);
        return EXIT.NOT_FOUND;
      }
      await store.appendAudit([
        {
          time: new Date().toISOString(),
          door: 'admin',
          agent: 'admin',
          user,
          method: 'ban.lift',
          target: values.agent ?? null,
          decision: allow('ban.lifted', 'cli'),
          outcome: 'ok',
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
          detail: { by, lifted },
        },
      ]);
      if (values.json) io.stdout(`${JSON.stringify({ user, lifted })}\n`);
      else io.stdout(`lifted ${lifted} ban${lifted === 1 ? '' : 's'} of ${JSON.stringify(user)}\n`);
      return EXIT.OK;
    } catch (err) {
      io.stderr(`bastion bans lift: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await store.close();
    }
  }
  io.stderr(`bastion bans: unknown subcommand "${verb}"\n${HELP}\n`);
  return EXIT.USAGE;
};
