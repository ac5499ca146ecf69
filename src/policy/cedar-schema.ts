/**
 * The Cedar schema Bastion's policies are validated against, published as text
 * (`schema/bastion.cedarschema`, written by {@link writeCedarSchema}; a test
 * fails when the committed copy drifts).
 *
 * Entity model (namespace `Bastion`):
 * - principal `Bastion::Agent::"<name>"` (no attributes);
 * - actions `Bastion::Action::"tools/call"`, `"resources/read"`, `"prompts/get"`;
 *   listing (`tools/list`, ...) asks the same action with `context.listing == true`;
 * - resources `Bastion::Tool::"<exposed name>"` {name, upstream},
 *   `Bastion::Resource::"<uri>"` {uri, upstream}, `Bastion::Prompt::"<exposed name>"` {name, upstream};
 * - context `{listing: Bool, upstream: String, args: Args, argsDigest: String, session: String}`, plus the network fields below
 *   and the provenance fields of a tools/call (`conversation`, `tool`, `argsFrom`, `provenance`, `hosts`, `emails`,
 *   `emailDomains`, `outside`: src/provenance/facts.ts; empty for other actions);
 * - the network door: actions `"network/connect"` and `"network/request"` on
 *   `Bastion::Host::"<host>"` {name}; the context adds `{port: Long, scheme, method,
 *   path: String}` (one context type for all actions: tool actions get port 0 and
 *   empty strings, network actions empty tool fields and no args).
 *
 * ## Why `context.args` is a closed record of optional attributes
 *
 * Tool arguments are arbitrary JSON, but Cedar 4.x strict validation has no open
 * record: `additionalAttributes: true` is refused by cedar-wasm 4.13 ("records and
 * entities with `additionalAttributes` are experimental, but the experimental
 * `partial-validate` feature is not enabled"), and `ValidationSettings.mode` only
 * offers `"strict"`. Entity tags (`hasTag`/`getTag`) would allow any key but only
 * one value type and not the `context.args.path` syntax policy authors expect.
 *
 * So `Args` declares the argument names tools commonly use ({@link ARGS_ATTRIBUTES})
 * as *optional* attributes with their usual type. A policy must guard with `has`
 * (`context.args has path && context.args.path like "*secret*"`) and then
 * type-checks. A policy that names an undeclared argument makes the validator warn
 * that it is impossible; Bastion turns every validation warning into an error, so
 * the mistake is reported at load instead of silently never matching.
 *
 * Requests are evaluated *without* the schema (the context carries whatever
 * arguments the call had, declared or not), so a declared attribute that arrives
 * with another type (say `path` as a list) makes the policy that reads it raise an
 * evaluation error, which Bastion's combining algorithm turns into a deny.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Argument names declared (optional) on `context.args`, with their Cedar type. */
export const ARGS_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({
  // Files (the path guard's built-in names).
  path: 'String',
  paths: 'Set<String>',
  source: 'String',
  destination: 'String',
  file: 'String',
  filename: 'String',
  files: 'Set<String>',
  directory: 'String',
  dir: 'String',
  root: 'String',
  cwd: 'String',
  // Network.
  url: 'String',
  uri: 'String',
  host: 'String',
  method: 'String',
  // Commands, code and queries.
  command: 'String',
  args: 'Set<String>',
  code: 'String',
  language: 'String',
  query: 'String',
  sql: 'String',
  pattern: 'String',
  // Content and messages.
  content: 'String',
  text: 'String',
  message: 'String',
  name: 'String',
  title: 'String',
  body: 'String',
  to: 'String',
  subject: 'String',
  // Repositories.
  owner: 'String',
  repo: 'String',
  branch: 'String',
  // Sizes and switches.
  limit: 'Long',
  head: 'Long',
  tail: 'Long',
  recursive: 'Bool',
  dryRun: 'Bool',
});

function argsType(): string {
  const lines = Object.entries(ARGS_ATTRIBUTES).map(([name, type]) => `    "${name}"?: ${type},`);
  return `  type Args = {\n${lines.join('\n')}\n  };`;
}

/** `context.provenance`: per declared argument name, the effective origins of its values (src/provenance/facts.ts). */
function provenanceType(): string {
  const lines = Object.keys(ARGS_ATTRIBUTES).map((name) => `    "${name}"?: Set<String>,`);
  return `  type Provenance = {\n${lines.join('\n')}\n  };`;
}

/** The Cedar schema, in Cedar's human-readable schema syntax. */
export const CEDAR_SCHEMA: string = `namespace Bastion {
  entity Agent;

  entity Tool = { name: String, upstream: String };
  entity Resource = { uri: String, upstream: String };
  entity Prompt = { name: String, upstream: String };

  // Tool arguments: optional, because any call may omit any of them (see src/policy/cedar-schema.ts).
${argsType()}

  // Provenance (docs/injection-defense.md): each argument's effective origins, one of
  // "user", "config", "untrusted", "trusted", "model".
${provenanceType()}

  // The conversation's taint: it read an untrusted tool's result (sources: those tools),
  // and whether a result was flagged by the injection detector (flaggedBy: the rules).
  type Taint = { tainted: Bool, flagged: Bool, sources: Set<String>, flaggedBy: Set<String> };

  // The tool's labels (docs/labels.md): source "trusted" | "untrusted", effects among
  // "read", "write", "send", "pay", "share", "delete", "egress".
  type ToolLabels = { source: String, effects: Set<String> };

  // One command of a sandbox run (action "sandbox/exec"; docs/sandbox.md). Other actions carry
  // it empty (via "", no words, dynamic false). words: every argument known before the command
  // runs (flags included); flags: the arguments starting with "-"; paths: the arguments and
  // redirection targets checked as paths, as seen inside the sandbox; dynamic: some argument is
  // only known when it runs ($VAR, $(...), globs); via: "argv", "shell" or "code"; within: the
  // constructs around it in the shell line ("pipeline", "substitution", "xargs", ...).
  type CommandFacts = { via: String, line: String, words: Set<String>, flags: Set<String>, paths: Set<String>, dynamic: Bool, within: Set<String>, language: String };

  // One context for every action, so a policy that leaves the action open validates
  // against all of them. Tool actions carry port 0 and empty scheme, method and path;
  // network actions carry listing false, empty upstream, argsDigest, session and no args.
  type RequestContext = {
    listing: Bool,
    upstream: String,
    args: Args,
    argsDigest: String,
    session: String,
    port: Long,
    scheme: String,
    method: String,
    path: String,
    conversation: Taint,
    tool: ToolLabels,
    argsFrom: Set<String>,
    provenance: Provenance,
    hosts: Set<String>,
    emails: Set<String>,
    emailDomains: Set<String>,
    outside: Set<String>,
    command: CommandFacts,
  };

  action "tools/call" appliesTo { principal: Agent, resource: Tool, context: RequestContext };
  action "resources/read" appliesTo { principal: Agent, resource: Resource, context: RequestContext };
  action "prompts/get" appliesTo { principal: Agent, resource: Prompt, context: RequestContext };

  // The network door. A destination host (normalized: lower case, IPv6 without brackets).
  entity Host = { name: String };

  // For network/connect, method is "CONNECT" and path is "" (the tunnel opens
  // before any request is seen); otherwise path is the URL's normalized pathname.
  // May the agent open a connection to this host and port (CONNECT)? A permit annotated
  // @intercept("required") allows it only with TLS interception, so network/request can be decided.
  action "network/connect" appliesTo { principal: Agent, resource: Host, context: RequestContext };
  // May the agent send this request (plain HTTP, or inside an intercepted tunnel)?
  action "network/request" appliesTo { principal: Agent, resource: Host, context: RequestContext };

  // The sandbox. A program a command runs: name as written (argv[0]), path the file it
  // resolves to inside the sandbox ("" when none does; then no short form permits it).
  entity Command = { name: String, path: String };
  // May the agent run this command in the sandbox (each command of a shell line is asked alone)?
  action "sandbox/exec" appliesTo { principal: Agent, resource: Command, context: RequestContext };
}
`;

/** The committed file's text: a generated-file header, then {@link CEDAR_SCHEMA}. */
export const CEDAR_SCHEMA_FILE_TEXT: string =
  '// Generated from src/policy/cedar-schema.ts by `npm run generate`. Do not edit.\n' + CEDAR_SCHEMA;

/** Where the schema is published, relative to the repository root. */
export const CEDAR_SCHEMA_FILE = 'schema/bastion.cedarschema';

/** Writes {@link CEDAR_SCHEMA_FILE_TEXT} to `<root>/schema/bastion.cedarschema`; returns the path written. */
export async function writeCedarSchema(root: string): Promise<string> {
  const file = join(root, CEDAR_SCHEMA_FILE);
  await mkdir(join(root, 'schema'), { recursive: true });
  await writeFile(file, CEDAR_SCHEMA_FILE_TEXT);
  return file;
}
