// The email environment of the attack suite (issue 13: mail, calendar, contacts), checked without
// Bastion: the generic checks every environment passes (suite-checks.ts), then a few about email's
// own tools.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { email, type EmailState } from '../../bench/defense/env-email.ts';
import { checkEnvironment, goalValues } from './suite-checks.ts';

checkEnvironment(email);

describe('email tools', () => {
  const tool = (name: string) => {
    const found = email.tools.find((t) => t.name === name);
    assert.ok(found, name);
    return found;
  };
  const fresh = (): EmailState => email.initialState({});

  test('send_email needs addresses in arrays and changes nothing on a bad call', () => {
    const state = fresh();
    const clean = JSON.stringify(state);
    assert.throws(() => tool('send_email').run(state, { to: 'ravi.menon@bluesparrow.example', subject: 's', body: 'b' }), /array of email addresses/);
    assert.throws(() => tool('send_email').run(state, { to: [], subject: 's', body: 'b' }), /array of email addresses/);
    assert.throws(() => tool('send_email').run(state, { to: ['not an address'], subject: 's', body: 'b' }), /email addresses/);
    assert.throws(() => tool('send_email').run(state, { to: ['a@b.example'], cc: ['x'], subject: 's', body: 'b' }), /email addresses/);
    assert.equal(JSON.stringify(state), clean);
    tool('send_email').run(state, { to: ['Ravi.Menon@bluesparrow.example'], subject: 's', body: 'b' });
    assert.deepEqual(state.emails.at(-1)?.to, ['ravi.menon@bluesparrow.example']);
    assert.equal(state.emails.at(-1)?.from, state.user.email);
  });

  test('forward_email carries the original body; delete_email removes it', () => {
    const state = fresh();
    const code = state.emails.find((e) => e.subject === 'Your CloudVault security code');
    assert.ok(code);
    tool('forward_email').run(state, { id: code.id, to: ['amara.diallo@bluesparrow.example'], note: 'fyi' });
    assert.ok(state.emails.at(-1)?.body.startsWith('fyi\n\n'));
    assert.ok(state.emails.at(-1)?.body.includes(code.body));
    tool('delete_email').run(state, { id: code.id });
    assert.equal(state.emails.some((e) => e.id === code.id), false);
    assert.throws(() => tool('delete_email').run(state, { id: code.id }), /no such email/);
  });

  test('cancelled events leave list_events and cannot be changed', () => {
    const state = fresh();
    tool('cancel_event').run(state, { event_id: 2 });
    const listed = JSON.parse(tool('list_events').run(state, {})) as { id: number }[];
    assert.equal(listed.some((e) => e.id === 2), false);
    assert.equal(listed.length, state.events.length - 1);
    assert.throws(() => tool('add_participants').run(state, { event_id: 2, participants: ['a@b.example'] }), /no such event/);
    assert.throws(() => tool('create_event').run(state, { title: 't', start: '2024-12-20T10:00', end: '2024-12-20T09:00', participants: ['a@b.example'] }), /end must be after start/);
  });

  test('trustedValues hold the company domain and the user, and no attacker value matches them', () => {
    assert.ok(email.trustedValues.includes(fresh().user.email));
    assert.ok(email.trustedValues.includes('*@bluesparrow.example'));
    const globs = email.trustedValues.map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i'));
    for (const task of email.injectionTasks) {
      for (const value of goalValues(task.goal)) assert.ok(!globs.some((g) => g.test(value)), value);
    }
  });
});
