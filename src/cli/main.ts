/**
 * `bastion` — the command-line entry point. Dispatches to one command per
 * module under ./commands; every command returns its exit code (see ./io.ts
 * and the README's table).
 */
import { readFileSync } from 'node:fs';
import { quietSqliteExperimentalWarning } from '../util/warnings.ts';
import { EXIT, readStdin, type CliCommand, type CliIO } from './io.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const HELP = `Usage: bastion <command> [options]

Commands:
  serve                       run the gateway (MCP at /mcp, admin API at /api)
  status                      the instances, upstream health, pending approvals, audit chain head
  stdio --agent NAME          serve the tool door over stdin/stdout
  config check                validate the config without starting anything
  reload                      reload a running serve's config (SIGHUP; docs/operating.md)
  policy explain              show the decision for a call and the policies behind it
  approvals list|approve|deny the approval queue
  tools list|diff|approve     pinned tool definitions (changed tools are withheld)
  bans list|lift USER         the model door's temporary bans of end users
  incident isolate|restore|snapshot|rotate|list AGENT  contain a compromised agent (docs/incidents.md)
  audit verify|tail|key|prune|export  check, follow, prune or export the audit chain
  store migrate               copy a SQLite store into an empty PostgreSQL database
  secret add|list|rotate|revoke|placeholder  vault secrets (values on stdin only)
  secret pasted list|bind     credentials end users pasted to the model (metadata only)
  egress check URL            the network door's decision on a URL, without connecting
  ca export                   print the local CA certificate (trust it for intercepted hosts)
  detect secrets < FILE       list the credentials in a file (masked; exit 1 when any)
  keys list|rotate            the identity keys that sign requests to tools (JWKS)
  oauth list|revoke           end users' connected accounts (per-user OAuth; never a token)
  peers add|list|token|remove agent-to-agent peers (signed messages between instances)
  version                     print the version

Every command takes --help. The config is --config FILE, else $BASTION_CONFIG, else ./bastion.yaml.`;

/** Lazily imported so `bastion version` does not load the MCP SDK or Cedar. */
const COMMANDS: Record<string, () => Promise<CliCommand>> = {
  serve: async () => (await import('./commands/serve.ts')).serve,
  status: async () => (await import('./commands/status.ts')).status,
  stdio: async () => (await import('./commands/stdio.ts')).stdio,
  'config check': async () => (await import('./commands/config-check.ts')).configCheck,
  reload: async () => (await import('./commands/reload.ts')).reload,
  'policy explain': async () => (await import('./commands/policy-explain.ts')).policyExplain,
  approvals: async () => (await import('./commands/approvals.ts')).approvals,
  tools: async () => (await import('./commands/tools.ts')).tools,
  bans: async () => (await import('./commands/bans.ts')).bans,
  incident: async () => (await import('./commands/incident.ts')).incident,
  'audit verify': async () => (await import('./commands/audit.ts')).auditVerify,
  'audit tail': async () => (await import('./commands/audit.ts')).auditTail,
  'audit key': async () => (await import('./commands/audit.ts')).auditKey,
  'audit prune': async () => (await import('./commands/audit-retention.ts')).auditPrune,
  'audit export': async () => (await import('./commands/audit-retention.ts')).auditExport,
  'secret add': async () => (await import('./commands/secret.ts')).secretAdd,
  'secret list': async () => (await import('./commands/secret.ts')).secretList,
  'secret rotate': async () => (await import('./commands/secret.ts')).secretRotate,
  'secret revoke': async () => (await import('./commands/secret.ts')).secretRevoke,
  'secret placeholder': async () => (await import('./commands/secret.ts')).secretPlaceholder,
  'secret pasted': async () => (await import('./commands/secret-pasted.ts')).secretPasted,
  'egress check': async () => (await import('./commands/egress-check.ts')).egressCheck,
  'ca export': async () => (await import('./commands/ca.ts')).caExport,
  'detect secrets': async () => (await import('./commands/detect.ts')).detectSecrets,
  'store migrate': async () => (await import('./commands/store.ts')).storeMigrate,
  peers: async () => (await import('./commands/peers.ts')).peers,
  keys: async () => (await import('./commands/keys.ts')).keys,
  oauth: async () => (await import('./commands/oauth.ts')).oauth,
};

/** The command groups: names whose commands are two words (`audit verify`), derived from {@link COMMANDS}. */
const GROUPS: ReadonlySet<string> = new Set(
  Object.keys(COMMANDS)
    .filter((k) => k.includes(' '))
    .map((k) => k.slice(0, k.indexOf(' '))),
);

/** A group's help: its commands (the lines of {@link HELP} that name them) and where each command's options are. */
function groupHelp(group: string): string {
  const commands = Object.keys(COMMANDS)
    .filter((k) => k.startsWith(`${group} `))
    .map((k) => k.slice(group.length + 1));
  const lines = HELP.split('\n').filter((l) => l.startsWith(`  ${group} `));
  return `Usage: bastion ${group} <${commands.join('|')}> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'bastion ${group} <command> --help' for a command's options.`;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const [a, b] = argv;
  if (a === undefined || a === 'help' || a === '--help' || a === '-h') {
    (a === undefined ? io.stderr : io.stdout)(`${HELP}\n`);
    return a === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (a === 'version' || a === '--version' || a === '-V') {
    io.stdout(`bastion ${pkg.version}\n`);
    return EXIT.OK;
  }
  const two = b !== undefined ? `${a} ${b}` : undefined;
  const load = (two !== undefined ? COMMANDS[two] : undefined) ?? COMMANDS[a];
  if (!COMMANDS[two ?? ''] && GROUPS.has(a)) {
    // A group of commands (`audit verify|tail|key`): --help lists them; anything else is a usage error.
    if (b === '--help' || b === '-h' || b === 'help') {
      io.stdout(`${groupHelp(a)}\n`);
      return EXIT.OK;
    }
    io.stderr(`bastion: ${b === undefined ? `"${a}" needs a command` : `unknown command "${two ?? a}"`}\n\n${groupHelp(a)}\n`);
    return EXIT.USAGE;
  }
  if (!load) {
    io.stderr(`bastion: unknown command "${two ?? a}"\n\n${HELP}\n`);
    return EXIT.USAGE;
  }
  const rest = two !== undefined && COMMANDS[two] ? argv.slice(2) : argv.slice(1);
  const command = await load();
  return command(rest, io);
}

/**
 * Runs the CLI as a process: `argv` (default: this process's arguments after node
 * and the script), the process's stdio and environment, then exits with the
 * command's code (after stdout drains). `bin/bastion.js` calls it; so does
 * `node src/cli/main.ts` when this file is the entry point.
 */
export function run(argv: readonly string[] = process.argv.slice(2)): void {
  quietSqliteExperimentalWarning();
  // A reader of our output that goes away (a closed pipe: EPIPE on the next write) must not end the
  // process, least of all a serving gateway: the audit chain, not the console, is the record.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', ignoreOutputError);
  const io: CliIO = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    stdin: () => readStdin(process.stdin, { prompt: (t) => void process.stderr.write(t) }),
  };
  main(argv, io).then(
    (code) => {
      process.exitCode = code;
      // Let stdout drain, then leave even if a library left a handle open.
      setTimeout(() => process.exit(code), 50).unref();
    },
    (err: unknown) => {
      process.stderr.write(`bastion: internal error${err instanceof Error ? `: ${err.name}` : ''}\n`);
      process.exit(EXIT.INTERNAL);
    },
  );
}

/** Output stream errors (EPIPE, a closed terminal): nothing to tell them to. */
function ignoreOutputError(): void {}

// `node src/cli/main.ts ...`: this file is the entry point (through the bin, argv[1] is the bin, which calls run()).
const isEntry = process.argv[1] !== undefined && import.meta.filename === (await import('node:fs')).realpathSync(process.argv[1]);
if (isEntry) run();
