/**
 * The sandbox's tools as MCP tools, for the tool door's catalogue: one
 * pseudo-upstream listing named {@link SANDBOX_UPSTREAM} with the `__` prefix,
 * so they are offered as `sandbox__run` and `sandbox__run_code` and decided,
 * labelled, approved and audited like any upstream's tools (the config refuses
 * an upstream named `sandbox` while the sandbox is enabled).
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { SANDBOX_LANGUAGES } from './config.ts';

/** The listing name, and the prefix of the tools' exposed names. */
export const SANDBOX_UPSTREAM = 'sandbox';

/** Most characters of a shell line or of code text. */
export const MAX_SOURCE_CHARS = 65_536;
/** Most characters of stdin. */
export const MAX_STDIN_CHARS = 1_048_576;

const common = {
  stdin: { type: 'string', maxLength: MAX_STDIN_CHARS, description: 'Text given to the program on standard input.' },
  timeoutMs: { type: 'integer', minimum: 100, maximum: 3_600_000, description: 'Wall-clock limit of this run in ms (never above the configured one).' },
} as const;

/** The two tools, with their input schemas (JSON Schema 2020-12, validated before anything runs). */
export const SANDBOX_TOOLS: readonly Tool[] = Object.freeze([
  {
    name: 'run',
    description:
      'Run a command in an isolated sandbox: a shell line (`command`, bash syntax) or an argv array (`argv`, run without a shell). ' +
      'Files persist in the working folder /workspace for the rest of this session. Network access goes only through the gateway, ' +
      'to the hosts this agent may reach. Returns the exit code, stdout and stderr (capped).',
    inputSchema: {
      type: 'object',
      properties: {
        command: { type: 'string', minLength: 1, maxLength: MAX_SOURCE_CHARS, description: 'A shell line, e.g. `git status && pytest -q`.' },
        argv: { type: 'array', items: { type: 'string', maxLength: MAX_SOURCE_CHARS }, minItems: 1, maxItems: 1024, description: 'The program and its arguments, e.g. ["git", "status"].' },
        ...common,
      },
      oneOf: [{ required: ['command'] }, { required: ['argv'] }],
      additionalProperties: false,
    },
    annotations: { title: 'Run a command in the sandbox', readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  },
  {
    name: 'run_code',
    description:
      'Run source code in an isolated sandbox: `python` (python3), `node` or `sh` (bash). The working folder /workspace persists for the ' +
      'rest of this session. Network access goes only through the gateway. Returns the exit code, stdout and stderr (capped).',
    inputSchema: {
      type: 'object',
      properties: {
        language: { type: 'string', enum: [...SANDBOX_LANGUAGES] },
        code: { type: 'string', minLength: 1, maxLength: MAX_SOURCE_CHARS },
        ...common,
      },
      required: ['language', 'code'],
      additionalProperties: false,
    },
    annotations: { title: 'Run code in the sandbox', readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  },
] as Tool[]);
