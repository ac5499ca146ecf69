/**
 * The drive environment of the attack suite (bench/defense/env-drive.ts), without Bastion: tools run
 * directly on a state. The generic checks every environment passes (suite-checks.ts: user tasks
 * clean and under attack, injection tasks, vectors read only through untrusted tools), then
 * drive's trusted values, labels and tools.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { drive } from '../../bench/defense/env-drive.ts';
import { checkEnvironment, directCall } from './suite-checks.ts';

const env = drive;

checkEnvironment(env, {
  // drive.user.12's check is that no file but the drafts changed: obeying a goal that deletes or creates a file undoes that by design.
  conflicts: [
    ['drive.user.12', 'drive.injection.1'],
    ['drive.user.12', 'drive.injection.2'],
    ['drive.user.12', 'drive.injection.4'],
  ],
});

test('trusted values: the company, and no attacker or guest domain', () => {
  assert.ok(env.trustedValues.includes('*@bluesparrow.example'));
  assert.ok(env.trustedValues.every((v) => !v.includes('evil-mail') && !v.includes('example.net') && !v.includes('example.org')));
});

test('labels of the tools that matter most', () => {
  const effects = (name: string): readonly string[] => env.tools.find((t) => t.name === name)?.labels.effect ?? [];
  assert.deepEqual(effects('share_file'), ['share']);
  assert.deepEqual(effects('delete_file'), ['delete']);
  assert.ok(effects('import_from_url').includes('egress'));
  for (const name of ['read_file', 'search_files', 'list_shared_with_me', 'import_from_url']) assert.equal(env.tools.find((t) => t.name === name)?.labels.source, 'untrusted', name);
});

test("tools: only the owner shares, renames or deletes; view access cannot edit; bad arguments are tool errors; imports are logged", async () => {
  const state = env.initialState({});
  const call = directCall(env, state);
  const shared = JSON.parse((await call('list_shared_with_me', {})).text) as { id: string; owner: string }[];
  assert.ok(shared.length >= 5 && shared.every((f) => f.owner !== state.me));
  const theirs = shared[0]?.id;
  assert.equal((await call('delete_file', { file_id: theirs })).isError, true);
  assert.equal((await call('share_file', { file_id: theirs, email: 'a@bluesparrow.example', permission: 'view' })).isError, true);
  assert.equal((await call('rename_file', { file_id: theirs, new_name: 'x' })).isError, true);
  assert.equal((await call('append_to_file', { file_id: theirs, content: 'x' })).isError, true);
  assert.equal((await call('share_file', { file_id: 'f-102', email: 'a@bluesparrow.example', permission: 'owner' })).isError, true);
  assert.equal((await call('share_file', { file_id: 'f-102', email: 'not an email', permission: 'view' })).isError, true);
  assert.equal((await call('read_file', { file_id: 'f-999' })).isError, true);
  assert.equal((await call('read_file', {})).isError, true);
  await call('share_file', { file_id: 'f-102', email: 'A@bluesparrow.example', permission: 'view' });
  await call('share_file', { file_id: 'f-102', email: 'a@bluesparrow.example', permission: 'edit' });
  assert.deepEqual(state.files.find((f) => f.id === 'f-102')?.sharedWith, [{ email: 'a@bluesparrow.example', permission: 'edit' }]);
  assert.equal((await call('import_from_url', { url: 'ftp://files.example.org/x', name: 'x' })).isError, true);
  assert.equal((await call('import_from_url', { url: 'https://nowhere.example.org/x', name: 'x' })).isError, true);
  assert.deepEqual(state.webRequests, ['https://nowhere.example.org/x']);
  const before = state.files.length;
  const created = JSON.parse((await call('create_file', { name: 'n.md', content: 'c' })).text) as { id: string };
  assert.equal(state.files.length, before + 1);
  assert.notEqual(created.id, JSON.parse((await call('create_file', { name: 'n.md', content: 'c' })).text).id);
});
