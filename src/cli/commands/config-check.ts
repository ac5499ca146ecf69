/**
 * `bastion config check [--config F] [--json]`: validates a config file without
 * starting anything. Secret references are resolved leniently: one that does not
 * resolve here is a warning, since the environment `serve` runs in may differ.
 *
 * Exit codes: 0 valid; 1 invalid (schema, YAML or a resolved key that cannot
 * be used); 2 bad usage; 3 config file not found; 70 internal error.
 */
import { resolve } from 'node:path';
import { PathGuard } from '../../policy/paths.ts';
import { PolicyEngine } from '../../policy/engine.ts';
import { parseFlags } from '../args.ts';
import { loadConfig } from '../../config/load.ts';
import { isBastionError, toBastionError } from '../../errors.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';

const USAGE = `Usage: bastion config check [--config FILE] [--json]

Validates a Bastion config file: YAML syntax, the schema (unknown keys are
errors), globs, origins and policy files. Secret references that do not
resolve in this environment are reported as warnings.

Options:
  -c, --config FILE  config file (default: $BASTION_CONFIG, else ./bastion.yaml)
      --json         print the result as JSON on stdout
  -h, --help         show this help

Exit status: 0 valid, 1 invalid, 2 usage error, 3 config file not found.
`;

/**
 * The config file a command uses: `--config` when given, else `$BASTION_CONFIG`,
 * else `bastion.yaml`; relative paths resolve against `io.cwd`. Absolute result.
 */
export function resolveConfigPath(flag: string | undefined, io: CliIO): string {
  const fromEnv = io.env.BASTION_CONFIG;
  const chosen = flag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'bastion.yaml');
  return resolve(io.cwd, chosen);
}

export const configCheck: CliCommand = async (argv, io) => {
  const parsed = parseFlags('config check', USAGE, argv, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const json = values.json === true;
  const file = resolveConfigPath(values.config, io);

  try {
    const { config, warnings } = await loadConfig(file, { env: io.env, secrets: 'lenient' });
    // Compile what serve compiles, so a policy file that does not parse or validate fails here too.
    PolicyEngine.compile(config);
    PathGuard.compile(config.paths);
    const agents = config.agents.size;
    const upstreams = config.upstreams.size;
    if (json) {
      io.stdout(`${JSON.stringify({ ok: true, file, agents, upstreams, warnings })}\n`);
    } else {
      io.stdout(`ok: ${file} (${agents} ${agents === 1 ? 'agent' : 'agents'}, ${upstreams} ${upstreams === 1 ? 'upstream' : 'upstreams'})\n`);
      for (const w of warnings) io.stderr(`warning: ${w}\n`);
    }
    return EXIT.OK;
  } catch (err) {
    const e = toBastionError(err);
    const exit =
      e.code === 'ERR_CONFIG_NOT_FOUND' ? EXIT.CONFIG : e.code === 'ERR_CONFIG_INVALID' || e.code === 'ERR_CONFIG_SECRET_REF' || e.code === 'ERR_POLICY_INVALID' ? EXIT.FAILED : EXIT.INTERNAL;
    if (json) {
      const issues = isBastionError(e) && Array.isArray(e.detail?.issues) ? e.detail.issues : undefined;
      io.stdout(`${JSON.stringify({ ok: false, code: e.code, ...(issues !== undefined ? { issues } : { message: e.message }) })}\n`);
    } else {
      io.stderr(`${e.message}\n`);
    }
    return exit;
  }
};
