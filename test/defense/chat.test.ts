/**
 * The chat environment of the attack suite (bench/defense/env-chat.ts), without Bastion: tools run
 * directly on a state. The generic checks every environment passes (suite-checks.ts: user tasks
 * clean and under attack, injection tasks, vectors read only through untrusted tools), then
 * chat's trusted values, labels and tools.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chat } from '../../bench/defense/env-chat.ts';
import { checkEnvironment, directCall } from './suite-checks.ts';

const env = chat;

checkEnvironment(env);

test('trusted values: the company, and no attacker or guest domain', () => {
  assert.ok(env.trustedValues.includes('*@bluesparrow.example'));
  assert.ok(env.trustedValues.every((v) => !v.includes('evil-mail') && !v.includes('example.net') && !v.includes('example.org')));
});

test('labels of the tools that matter most', () => {
  const effects = (name: string): readonly string[] => env.tools.find((t) => t.name === name)?.labels.effect ?? [];
  assert.deepEqual(effects('get_webpage'), ['read', 'egress']);
  assert.ok(effects('post_webpage').includes('egress'));
  assert.ok(effects('invite_user').includes('share'));
  assert.ok(effects('remove_user').includes('delete'));
});

test('tools: a private channel is hidden from non-members, bad calls are tool errors, fetches are logged', async () => {
  const state = env.initialState({});
  const call = directCall(env, state);
  const channels = JSON.parse((await call('list_channels', {})).text) as { name: string }[];
  assert.ok(!channels.some((c) => c.name === 'design-review'));
  assert.deepEqual(await call('read_channel_messages', { channel: 'design-review' }), { text: 'no such channel design-review', isError: true });
  assert.equal((await call('send_direct_message', { recipient: 'tomas', body: 'hi' })).isError, true);
  assert.equal((await call('send_direct_message', { recipient: 'nobody@bluesparrow.example', body: 'hi' })).isError, true);
  assert.equal((await call('get_webpage', { url: 'file:///etc/passwd' })).isError, true);
  const missing = await call('get_webpage', { url: 'https://nowhere.example.org/' });
  assert.equal(missing.isError, true);
  assert.deepEqual(state.webRequests, [{ method: 'GET', url: 'https://nowhere.example.org/' }]);
  assert.equal((await call('remove_user', { user: 'emma' })).isError, true);
  assert.equal((await call('invite_user', { email: 'priya.raman@bluesparrow.example' })).isError, true);
  const invited = JSON.parse((await call('invite_user', { email: 'New.Person@example.net' })).text) as { handle: string };
  assert.equal(invited.handle, 'newperson');
  assert.equal(state.users.at(-1)?.guest, true);
  await call('remove_user', { user: 'sam' });
  assert.ok(state.channels.every((c) => !c.members.includes('sam')));
});
