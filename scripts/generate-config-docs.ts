/**
 * Generates the config JSON Schema (`schema/bastion.schema.json`) and the config
 * reference (`docs/config-reference.md`) from `src/config/schema.ts`.
 *
 * Usage: node scripts/generate-config-docs.ts [--check]
 *   --check  write nothing; exit 1 naming each committed file that differs from
 *            what would be generated (CI and a test run this).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CEDAR_SCHEMA_FILE, CEDAR_SCHEMA_FILE_TEXT } from '../src/policy/cedar-schema.ts';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigSchema, NamePattern, PathGlob, SecretRef } from '../src/config/schema.ts';

const root = join(import.meta.dirname, '..');
const SCHEMA_FILE = 'schema/bastion.schema.json';
const DOC_FILE = 'docs/config-reference.md';

type JsonSchema = {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  [k: string]: unknown;
};

/** The JSON Schema of bastion.yaml as an editor sees it (input form: keys with defaults are optional). */
export function buildJsonSchema(): JsonSchema {
  const generated = z.toJSONSchema(ConfigSchema, { io: 'input' }) as JsonSchema;
  // zod cannot express the upstream refine ("exactly one of command or url") in JSON Schema; state it here.
  const upstream = generated.properties?.upstreams?.additionalProperties;
  if (typeof upstream !== 'object') throw new Error('schema shape changed: upstreams.additionalProperties');
  upstream.oneOf = [{ required: ['command'] }, { required: ['url'] }];
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: 'urn:bastion:config:1',
    title: 'Bastion configuration (bastion.yaml)',
    ...rest,
    description: 'The configuration of the Bastion security gateway. Generated from src/config/schema.ts by scripts/generate-config-docs.ts; do not edit.',
  };
}

const secretRefPattern = (z.toJSONSchema(SecretRef) as JsonSchema).pattern;
const namePatternPattern = (z.toJSONSchema(NamePattern) as JsonSchema).pattern;
const pathGlobDescription = PathGlob.description;

/** A short, human name for the type a schema accepts. */
function typeName(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum !== undefined) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' or ');
  if (s.type === 'string') {
    if (s.pattern !== undefined && s.pattern === secretRefPattern) return 'secret reference';
    if (s.pattern !== undefined && s.pattern === namePatternPattern) return 'name pattern';
    if (s.description !== undefined && s.description === pathGlobDescription) return 'path glob';
    if (s.format === 'uri') return 'URL';
    return 'string';
  }
  if (s.type === 'array') return `list of ${s.items === undefined ? 'values' : typeName(s.items)}`;
  if (s.type === 'object') {
    if (typeof s.additionalProperties === 'object') {
      const v = s.additionalProperties;
      return `map of ${v.type === 'object' ? 'objects' : typeName(v)}`;
    }
    return 'object';
  }
  return s.type ?? 'any';
}

/** Bounds and patterns, briefly. Patterns of named types (secret reference, name pattern) are explained once, above. */
function constraints(s: JsonSchema): string {
  const out: string[] = [];
  const named = s.pattern === secretRefPattern || s.pattern === namePatternPattern;
  if (s.type === 'string' && s.pattern !== undefined && !named) out.push(`matches \`${s.pattern}\``);
  if (s.minLength !== undefined && s.minLength > 1) out.push(`at least ${s.minLength} characters`);
  if (s.maxLength !== undefined) out.push(`at most ${s.maxLength} characters`);
  if (s.exclusiveMinimum !== undefined) out.push(`> ${s.exclusiveMinimum}`);
  if (s.minimum !== undefined) out.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
  if (s.maxItems !== undefined) out.push(`at most ${s.maxItems} items`);
  if (s.type === 'array' && s.items !== undefined) {
    const inner = constraints(s.items);
    if (inner !== '') out.push(`each: ${inner}`);
  }
  if (s.type === 'object' && s.propertyNames?.pattern !== undefined) out.push(`names match \`${s.propertyNames.pattern}\``);
  return out.join('; ');
}

function cell(text: string): string {
  return text.replaceAll('\n', ' ').replaceAll('|', '\\|');
}

function defaultCell(s: JsonSchema, required: boolean, parent: string): string {
  if (required) return parent === '' ? '**required**' : `**required** in \`${parent}\``;
  if (s.default === undefined) return '—';
  const text = JSON.stringify(s.default);
  return text.length > 48 ? 'see section' : `\`${text}\``;
}

interface Section {
  readonly path: string;
  readonly schema: JsonSchema;
}

/** Renders one object's keys as a table, queuing nested objects and maps of objects as sections of their own. */
function renderSection(section: Section, queue: Section[]): string {
  const { path, schema } = section;
  const lines: string[] = [];
  lines.push(`## ${path === '' ? 'Top level' : `\`${path}\``}`, '');
  if (schema.description !== undefined && path !== '') lines.push(schema.description, '');
  lines.push('| Key | Type | Default | Constraints | Description |', '| --- | --- | --- | --- | --- |');
  const required = new Set(schema.required ?? []);
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const full = path === '' ? key : `${path}.${key}`;
    let type = typeName(prop);
    if (prop.type === 'object' && prop.properties !== undefined) {
      queue.push({ path: full, schema: prop });
      type = `object, see [\`${full}\`](#${anchor(full)})`;
    } else if (prop.type === 'object' && typeof prop.additionalProperties === 'object' && prop.additionalProperties.type === 'object') {
      const item = `${full}.<name>`;
      queue.push({ path: item, schema: { ...prop.additionalProperties, description: prop.additionalProperties.description } });
      type = `map of objects, see [\`${item}\`](#${anchor(item)})`;
    }
    const description = prop.description ?? (prop.type === 'array' ? prop.items?.description : undefined) ?? '';
    lines.push(`| \`${cell(full)}\` | ${cell(type)} | ${cell(defaultCell(prop, required.has(key), path))} | ${cell(constraints(prop))} | ${cell(description)} |`);
  }
  if (path.startsWith('upstreams.')) lines.push('', 'Exactly one of `command` (stdio) or `url` (Streamable HTTP) must be given.');
  lines.push('');
  return lines.join('\n');
}

/** GitHub's heading anchor for a code-span heading. */
function anchor(path: string): string {
  return path.toLowerCase().replace(/[^a-z0-9 _-]/g, '');
}

/** The Markdown reference. */
export function buildReference(schema: JsonSchema): string {
  const parts: string[] = [
    '<!-- Generated from src/config/schema.ts by scripts/generate-config-docs.ts (npm run generate); do not edit. -->',
    '',
    '# Configuration reference',
    '',
    'Bastion reads one YAML file, `bastion.yaml` (`--config FILE` or `$BASTION_CONFIG` to choose another).',
    'It is validated strictly: an unknown key, a value of the wrong type or a glob that does not compile is an',
    'error naming the file, line, column and key path, and the whole file is rejected. Check a file with',
    '`bastion config check`. Editors can validate against the JSON Schema in',
    `[\`${SCHEMA_FILE}\`](../${SCHEMA_FILE}).`,
    '',
    'Conventions:',
    '',
    `- **secret reference**: ${SecretRef.description ?? ''} Secrets never appear literally in the file.`,
    `- **name pattern**: ${NamePattern.description ?? ''}`,
    `- **path glob**: ${pathGlobDescription ?? ''} Globs starting with \`**\` match at any depth.`,
    '- Relative paths (the store, path globs, policy files, `file:` references) resolve against the folder of the config',
    '  file, and stdio upstreams run in that folder.',
    '- Durations are in milliseconds (`…Ms`), sizes in bytes (`…Bytes`).',
    '',
  ];
  const queue: Section[] = [{ path: '', schema }];
  for (let s = queue.shift(); s !== undefined; s = queue.shift()) parts.push(renderSection(s, queue));
  return `${parts.join('\n').trimEnd()}\n`;
}

function main(): void {
  const check = process.argv.includes('--check');
  const unknown = process.argv.slice(2).filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(`generate-config-docs: unknown argument ${unknown[0]}\nUsage: node scripts/generate-config-docs.ts [--check]`);
    process.exit(2);
  }
  const schema = buildJsonSchema();
  const outputs: [string, string][] = [
    [SCHEMA_FILE, `${JSON.stringify(schema, null, 2)}\n`],
    [DOC_FILE, buildReference(schema)],
    [CEDAR_SCHEMA_FILE, CEDAR_SCHEMA_FILE_TEXT],
  ];
  if (check) {
    const drifted = outputs.filter(([file, text]) => {
      try {
        return readFileSync(join(root, file), 'utf8') !== text;
      } catch {
        return true;
      }
    });
    for (const [file] of drifted) console.error(`drift: ${file} is out of date with the schemas in src/; run npm run generate`);
    process.exit(drifted.length > 0 ? 1 : 0);
  }
  for (const [file, text] of outputs) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
    console.log(`wrote ${file}`);
  }
}

if (import.meta.main) main();
