import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildJsonSchema } from '../../scripts/generate-config-docs.ts';

const root = join(import.meta.dirname, '..', '..');

test('the committed JSON schema and reference match src/config/schema.ts', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts/generate-config-docs.ts'), '--check'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('the JSON schema has an id and a title, and states the upstream command/url rule', () => {
  const committed = JSON.parse(readFileSync(join(root, 'schema/bastion.schema.json'), 'utf8'));
  assert.equal(typeof committed.$id, 'string');
  assert.equal(typeof committed.title, 'string');
  assert.equal(committed.additionalProperties, false);
  assert.deepEqual(committed.properties.upstreams.additionalProperties.oneOf, [{ required: ['command'] }, { required: ['url'] }]);
  assert.deepEqual(buildJsonSchema(), committed);
});
