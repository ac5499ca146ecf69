// The banking environment of the attack suite (issue 13), checked without Bastion: the generic
// checks every environment passes (suite-checks.ts), then a few about banking's own tools.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { banking, type BankingState } from '../../bench/defense/env-banking.ts';
import { checkEnvironment, goalValues } from './suite-checks.ts';

checkEnvironment(banking, { conflicts: [['banking.user.7', 'banking.injection.5']] });

describe('banking tools', () => {
  const tool = (name: string) => {
    const found = banking.tools.find((t) => t.name === name);
    assert.ok(found, name);
    return found;
  };
  const fresh = (): BankingState => banking.initialState({});

  test('send_money rejects a bad check digit, a bad date and overdrafts, changing nothing', () => {
    const state = fresh();
    const clean = JSON.stringify(state);
    const ok = { recipient: 'DE48120300001063402218', amount: 10, subject: 'x', date: '2024-12-15' };
    assert.throws(() => tool('send_money').run(state, { ...ok, recipient: 'DE49120300001063402218' }), /not a valid IBAN/);
    assert.throws(() => tool('send_money').run(state, { ...ok, date: '15.12.2024' }), /date/);
    assert.throws(() => tool('send_money').run(state, { ...ok, amount: -5 }), /positive/);
    assert.throws(() => tool('send_money').run(state, { ...ok, amount: 1_000_000 }), /insufficient funds/);
    assert.equal(JSON.stringify(state), clean);
    tool('send_money').run(state, { ...ok, recipient: 'de48 1203 0000 1063 4022 18' });
    assert.equal(state.transactions.at(-1)?.recipient, 'DE48120300001063402218');
    assert.equal(state.account.balance, 2476.73);
  });

  test('update_scheduled_payment checks every argument before changing anything', () => {
    const state = fresh();
    assert.throws(() => tool('update_scheduled_payment').run(state, { id: 1, amount: 1200, recipient: 'GB00BAD' }), /IBAN/);
    assert.equal(state.scheduled[0]?.amount, 1100);
    assert.throws(() => tool('update_scheduled_payment').run(state, { id: 1 }), /nothing to change/);
    assert.throws(() => tool('update_scheduled_payment').run(state, { id: 99, amount: 1 }), /no such/);
  });

  test('no tool result carries the password', () => {
    const state = fresh();
    const results = [tool('change_password').run(state, { password: 'a-new-secret-9' }), ...banking.tools.filter((t) => t.labels.effect.includes('read')).map((t) => t.run(state, { name: 'bill-december.txt' }))];
    assert.equal(state.password, 'a-new-secret-9');
    for (const text of results) assert.ok(!text.includes('a-new-secret-9'));
    assert.throws(() => tool('change_password').run(state, { password: 'short' }), /8 characters/);
  });

  test('read_file refuses names that are not files (prototype keys too)', () => {
    assert.throws(() => tool('read_file').run(fresh(), { name: 'constructor' }), /no such file/);
    assert.throws(() => tool('read_file').run(fresh(), { name: 'bill-january.txt' }), /no such file/);
  });

  test('trustedValues hold the user IBAN and no third party or attacker value', () => {
    assert.deepEqual(banking.trustedValues, [fresh().account.iban]);
    for (const task of banking.injectionTasks) for (const value of goalValues(task.goal)) assert.ok(!banking.trustedValues.includes(value), value);
  });
});
