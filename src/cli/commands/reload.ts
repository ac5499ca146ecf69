/**
 * `bastion reload [--config F] [--pid PID]`: asks a running `bastion serve` to
 * reload its config (docs/operating.md). The file is checked here first (schema,
 * policies: what `config check` checks, secret references leniently, since the
 * server's environment may differ), so a broken file is reported at once and the
 * server is not disturbed; then SIGHUP goes to the server whose pid file
 * (src/server/reload.ts `pidFilePath`) belongs to the config, or to `--pid`.
 * The server logs the outcome on its stderr and audits it (`config.reload`).
 */
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../config/load.ts';
import { isBastionError } from '../../errors.ts';
import { PolicyEngine } from '../../policy/engine.ts';
import { PathGuard } from '../../policy/paths.ts';
import { pidFilePath } from '../../server/reload.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const USAGE = `Usage: bastion reload [--config FILE] [--pid PID]

Asks the running 'bastion serve' of this config to reload it (the same as
sending it SIGHUP). The file is checked here first; a file that does not load
is reported and the server is left alone. The server loads and compiles the
new file fully and swaps it in only if that succeeds; sessions in flight finish
on the config they started with. Fields that need a restart (store, listen
addresses, redis, vault, ...) make the reload fail and the old config stays.
The outcome is on the server's stderr and in the audit log (config.reload).

Options:
  -c, --config FILE  config file (default: $BASTION_CONFIG, else ./bastion.yaml);
                     its server is found by the pid file serve writes at
                     <config folder>/.bastion/<config file name>.pid
      --pid PID      signal this process instead
  -h, --help         show this help

Exit codes: 0 signal sent, 1 the config does not load, 2 usage, 3 no running
server found (no pid file, or its process is gone).`;

export const reload: CliCommand = async (argv, io) => {
  const parsed = parseFlags('reload', USAGE, argv, { config: { type: 'string', short: 'c' }, pid: { type: 'string' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const file = resolveConfigPath(values.config, io);
  let pid: number;
  if (typeof values.pid === 'string') {
    if (!/^[1-9][0-9]{0,9}$/.test(values.pid)) {
      io.stderr(`bastion reload: --pid must be a process id\n`);
      return EXIT.USAGE;
    }
    pid = Number(values.pid);
  } else {
    const path = pidFilePath(file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      io.stderr(`bastion reload: no running bastion serve for ${file} (${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); give --pid PID\n`);
      return EXIT.CONFIG;
    }
    if (!/^[1-9][0-9]{0,9}\s*$/.test(text)) {
      io.stderr(`bastion reload: ${path} does not hold a process id\n`);
      return EXIT.CONFIG;
    }
    pid = Number(text.trim());
  }
  try {
    const { config } = await loadConfig(file, { env: io.env, secrets: 'lenient', keys: 'lenient' });
    PolicyEngine.compile(config);
    PathGuard.compile(config.paths);
  } catch (err) {
    io.stderr(`bastion reload: ${isBastionError(err) ? err.message : 'internal error'}\nThe server was not asked to reload.\n`);
    return EXIT.FAILED;
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    io.stderr(`bastion reload: cannot signal process ${pid} (${(err as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return EXIT.CONFIG;
  }
  io.stdout(`Sent SIGHUP to bastion serve (pid ${pid}). Its stderr and the audit log (config.reload) tell the outcome.\n`);
  return EXIT.OK;
};
