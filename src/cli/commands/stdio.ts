/**
 * `bastion stdio --agent NAME [--config F]`: the tool door over stdio, for
 * local MCP clients that only speak stdio. The local user who starts the
 * process chooses the agent (they could run the upstreams themselves anyway);
 * everything else — policy, approvals, audit — is as over HTTP. Stdout carries
 * only MCP messages; diagnostics go to stderr.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { loadConfig } from '../../config/load.ts';
import { isBastionError } from '../../errors.ts';
import { loadVaultKey } from '../../vault/kek.ts';
import { Gateway } from '../../server/gateway.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const HELP = `Usage: bastion stdio --agent NAME [--config FILE]

Serves the tool door on stdin/stdout as agent NAME.
Exit codes: 0 client closed stdin (or the agent was isolated meanwhile), 1 the agent is isolated,
2 usage, 3 config invalid or unknown agent, 4 store error.`;

export const stdio: CliCommand = async (argv, io) => {
  const parsed = parseFlags('stdio', HELP, argv, { config: { type: 'string', short: 'c' }, agent: { type: 'string' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (!values.agent) {
    io.stderr(`bastion stdio: --agent is required\n${HELP}\n`);
    return EXIT.USAGE;
  }
  let gateway: Gateway;
  try {
    const { config } = await loadConfig(resolveConfigPath(values.config, io), { env: io.env, secrets: 'strict' });
    if (!config.agents.has(values.agent)) {
      io.stderr(`bastion stdio: no agent "${values.agent}" in ${config.file}\n`);
      return EXIT.CONFIG;
    }
    // The KEK seals the audit signing key and opens the vault (vault:NAME upstream environments).
    const kek = await loadVaultKey(config, io.env);
    ({ gateway } = await Gateway.open(config, { kek }));
  } catch (err) {
    io.stderr(`bastion stdio: ${isBastionError(err) ? err.message : 'internal error'}\n`);
    return isBastionError(err, 'ERR_STORE') ? EXIT.STORE : EXIT.CONFIG;
  }
  // An isolated agent (src/incidents/isolation.ts) is not served, and its session ends when it is isolated.
  if (gateway.isolations.isIsolated(values.agent)) {
    io.stderr(`bastion stdio: agent "${values.agent}" is isolated (ERR_AGENT_ISOLATED)\n`);
    await gateway.close();
    return EXIT.FAILED;
  }
  const session = gateway.newSession(values.agent);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    gateway.isolations.onChange(({ agent, isolated }) => {
      if (isolated && agent === values.agent) {
        io.stderr(`bastion stdio: agent "${agent}" was isolated (ERR_AGENT_ISOLATED); closing\n`);
        resolve();
      }
    });
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await session.connect(transport);
  await closed;
  await session.close();
  await gateway.close();
  return EXIT.OK;
};
