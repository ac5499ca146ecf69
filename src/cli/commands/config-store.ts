/**
 * Opening the store a config names, for the admin commands that work on it
 * directly (approvals, bans): the config is loaded leniently (unresolved
 * secret references do not matter here) and the store is created if missing.
 */
import { loadConfig } from '../../config/load.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { isBastionError } from '../../errors.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/store.ts';
import { EXIT, type CliIO } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

/**
 * The config and its store; on failure writes `bastion <command>: why` to stderr
 * and returns the exit code (`EXIT.CONFIG` or `EXIT.STORE`).
 */
export async function openConfiguredStore(command: string, configFlag: string | undefined, io: CliIO): Promise<{ config: ResolvedConfig; store: Store } | number> {
  let config: ResolvedConfig;
  try {
    ({ config } = await loadConfig(resolveConfigPath(configFlag, io), { env: io.env, secrets: 'lenient' }));
  } catch (err) {
    io.stderr(`bastion ${command}: ${isBastionError(err) ? err.message : 'cannot load config'}\n`);
    return EXIT.CONFIG;
  }
  try {
    return { config, store: await openStore(config.store) };
  } catch (err) {
    io.stderr(`bastion ${command}: ${isBastionError(err) ? err.message : 'cannot open store'}\n`);
    return EXIT.STORE;
  }
}
