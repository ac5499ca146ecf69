/**
 * The anomaly engine in one process (no Redis): each rule kind fires past its
 * threshold and not below it, one alert per firing with the records' seqs,
 * auto-isolation, its own alert records ignored, and bounded memory.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { withinHours } from '../../src/anomaly/engine.ts';
import { AuditLog } from '../../src/audit/log.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { harness, rec, rule, T0 } from './helpers.ts';

const deny = (reason: string) => ({ effect: 'deny' as const, reason, rule: 'r' });

describe('burst', () => {
  test('more than max requests within the window fires once, with the records', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 5, windowS: 10 })]);
    const first = [0, 1, 2, 3, 4].map((s) => rec(s));
    await h.feed(...first);
    assert.equal(h.alerts.length, 0, 'five is not more than five');
    const sixth = rec(5);
    await h.feed(sixth, rec(6), rec(7));
    assert.equal(h.alerts.length, 1, 'one alert per firing, not one per record past the threshold');
    const a = h.alerts[0]!;
    assert.equal(a.kind, 'anomaly.burst');
    assert.equal(a.severity, 'warning');
    assert.equal(a.agent, 'a1');
    assert.deepEqual(a.detail.records, [...first, sixth].map((r) => r.seq));
    assert.equal(a.detail.ruleKind, 'burst');
    assert.equal(a.detail.isolation, undefined);
    assert.equal(h.isolations.length, 0);
  });

  test('the same number spread wider than the window does not fire', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 5, windowS: 10 })]);
    await h.feed(...Array.from({ length: 40 }, (_, i) => rec(i * 3)));
    assert.equal(h.alerts.length, 0);
  });

  test('per tool: counts per agent and target', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 5, windowS: 60, per: 'tool' })]);
    await h.feed(...[0, 1, 2, 3].flatMap((s) => [rec(s, { target: 'a__x' }), rec(s, { target: 'b__y' })]));
    assert.equal(h.alerts.length, 0, 'eight calls, four per tool');
    await h.feed(rec(5, { target: 'a__x' }), rec(6, { target: 'a__x' }));
    assert.equal(h.alerts.length, 1);
    assert.equal(h.alerts[0]!.detail.target, 'a__x');
  });

  test('side records and admin/system records are not counted', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 2, windowS: 60 })]);
    await h.feed(
      rec(0, { method: 'tools/pin' }),
      rec(0, { method: 'ratelimit.charge' }),
      rec(0, { door: 'system', agent: null, method: 'serve.start' }),
      rec(0, { door: 'admin', agent: 'admin', method: 'approval.decide' }),
      rec(0, { agent: null }),
      rec(0, { method: 'tools/pin' }),
    );
    assert.equal(h.alerts.length, 0);
  });
});

describe('denialSpike', () => {
  test('more than max denials fires; allows in between do not count', async () => {
    const h = harness([rule('denials', { kind: 'denialSpike', max: 3, windowS: 60 })]);
    await h.feed(rec(0, { decision: deny('policy.forbid'), outcome: 'denied' }), rec(1), rec(2, { decision: deny('path.outside'), outcome: 'denied' }), rec(3), rec(4, { decision: deny('policy.forbid'), outcome: 'denied' }), rec(5));
    assert.equal(h.alerts.length, 0);
    const fourth = rec(6, { decision: deny('tool.unknown'), outcome: 'denied' });
    await h.feed(fourth);
    assert.equal(h.alerts.length, 1);
    assert.equal(h.alerts[0]!.kind, 'anomaly.denials');
    assert.equal((h.alerts[0]!.detail.records as number[]).length, 4);
    assert.equal(h.alerts[0]!.detail.lastReason, 'tool.unknown');
  });
});

describe('pinChanges', () => {
  test('more than max changes within the window fires; first-use pins do not count', async () => {
    const h = harness([rule('pins', { kind: 'pinChanges', max: 2, windowS: 3600 })]);
    const pin = (s: number, reason: string) => rec(s, { method: 'tools/pin', target: `up__t${s}`, decision: { effect: reason === 'tool.pinned' ? 'allow' : 'deny', reason, rule: 'pinning' }, outcome: 'denied' });
    await h.feed(pin(0, 'tool.pin_changed'), pin(1, 'tool.pinned'), pin(2, 'tool.pinned'), pin(3, 'tool.pin_renamed'));
    assert.equal(h.alerts.length, 0);
    await h.feed(pin(4, 'tool.pin_changed'));
    assert.equal(h.alerts.length, 1);
    assert.equal(h.alerts[0]!.detail.lastTool, 'up__t4');
  });
});

describe('sensitivePath', () => {
  const r = rule('sensitive', { kind: 'sensitivePath', hosts: ['*.pastebin.com'] });

  test('a path-guard refusal of a deny glob fires', async () => {
    const h = harness([r]);
    const denied = rec(0, { decision: { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' }, outcome: 'denied', detail: { pathArgument: '/path' } });
    await h.feed(denied);
    assert.equal(h.alerts.length, 1);
    assert.equal(h.alerts[0]!.severity, 'critical');
    assert.deepEqual(h.alerts[0]!.detail.records, [denied.seq]);
    assert.equal(h.alerts[0]!.detail.via, 'reason');
    assert.equal(h.alerts[0]!.detail.pathArgument, '/path');
  });

  test('a file: resource, recorded arguments and a host match; ordinary ones do not', async () => {
    const h = harness([r]);
    await h.feed(
      rec(0, { agent: 'ok1', args: { path: '/tmp/report.txt', text: 'see ~/.ssh later' } }),
      rec(0, { agent: 'ok2', method: 'resources/read', target: 'file:///srv/data/readme.md' }),
      rec(0, { agent: 'ok3', door: 'network', method: 'GET', target: 'api.github.com:443' }),
      rec(0, { agent: 'ok4', decision: { effect: 'deny', reason: 'path.outside', rule: 'paths.allow' }, outcome: 'denied' }),
    );
    assert.equal(h.alerts.length, 0, JSON.stringify(h.alerts));
    await h.feed(
      rec(1, { agent: 'b1', method: 'resources/read', target: 'file:///home/u/.ssh/id_ed25519' }),
      rec(1, { agent: 'b2', args: { opts: { files: ['/tmp/a', '/home/u/project/../.aws/credentials'] } } }),
      rec(1, { agent: 'b3', door: 'network', method: 'CONNECT', target: 'x.PASTEBIN.com:443' }),
    );
    assert.deepEqual(
      h.alerts.map((a) => [a.agent, a.detail.via, a.detail.match]),
      [
        ['b1', 'target', '**/.ssh/**'],
        ['b2', 'arguments', '**/.aws/**'],
        ['b3', 'host', 'x.pastebin.com'],
      ],
    );
    // The alert names the glob, never the path itself.
    assert.ok(!JSON.stringify(h.alerts).includes('credentials'));
  });

  test('a cooldown per agent: a second hit soon after does not alert again', async () => {
    const h = harness([r]);
    const hit = (s: number) => rec(s, { decision: { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' }, outcome: 'denied' });
    await h.feed(hit(0), hit(1), hit(2));
    assert.equal(h.alerts.length, 1);
  });
});

describe('newSecretHost', () => {
  const net = (s: number, target: string, secrets: string[], over = {}) => rec(s, { door: 'network', method: 'GET', target, session: null, detail: { mode: 'forward', secrets }, ...over });

  test('after the learning period, a secret sent to a new host fires; known pairs and refusals do not', async () => {
    const h = harness([rule('secrets', { kind: 'newSecretHost', learningS: 60 })]);
    await h.feed(net(0, 'api.github.com:443', ['gh']), net(10, 'uploads.github.com:443', ['gh']));
    assert.equal(h.alerts.length, 0, 'learning');
    await h.feed(net(120, 'api.github.com:443', ['gh']), net(121, 'uploads.github.com:443', ['gh']));
    assert.equal(h.alerts.length, 0, 'known pairs');
    await h.feed(net(122, 'evil.example:443', ['gh'], { decision: deny('release.host_mismatch'), outcome: 'denied' }));
    assert.equal(h.alerts.length, 0, 'a refused release is the network door\'s own alert');
    const fresh = net(130, 'evil.example:443', ['gh', 'other']);
    await h.feed(fresh);
    assert.equal(h.alerts.length, 1);
    assert.deepEqual(h.alerts[0]!.detail.secrets, ['gh', 'other']);
    assert.equal(h.alerts[0]!.detail.target, 'evil.example:443');
    assert.deepEqual(h.alerts[0]!.detail.records, [fresh.seq]);
    await h.feed(net(140, 'evil.example:443', ['gh']));
    assert.equal(h.alerts.length, 1, 'learned now');
  });

  test('the learning period is per agent: a new agent learns first', async () => {
    const h = harness([rule('secrets', { kind: 'newSecretHost', learningS: 60 })]);
    await h.feed(net(0, 'a.example:443', ['k']), net(500, 'b.example:443', ['k'], { agent: 'late' }));
    assert.equal(h.alerts.length, 0);
  });
});

describe('newToolCombination', () => {
  test('two tools never used together in a session fire after the learning period', async () => {
    const h = harness([rule('combo', { kind: 'newToolCombination', learningS: 60 })]);
    await h.feed(rec(0, { target: 'crm__read' }), rec(1, { target: 'mail__send' }));
    assert.equal(h.alerts.length, 0, 'learning');
    await h.feed(rec(100, { session: 's2', target: 'mail__send' }), rec(101, { session: 's2', target: 'crm__read' }), rec(102, { session: 's2', target: 'crm__read' }));
    assert.equal(h.alerts.length, 0, 'a known pair');
    const third = rec(103, { session: 's2', target: 'pay__transfer' });
    await h.feed(third);
    assert.equal(h.alerts.length, 1);
    assert.deepEqual(h.alerts[0]!.detail.pairs, ['crm__read + pay__transfer', 'mail__send + pay__transfer']);
    assert.deepEqual(h.alerts[0]!.detail.records, [third.seq]);
    // Another session of the same agent using the same pair: learned.
    await h.feed(rec(200, { session: 's3', target: 'pay__transfer' }), rec(201, { session: 's3', target: 'mail__send' }));
    assert.equal(h.alerts.length, 1);
  });

  test('refused calls and calls without a session do not count', async () => {
    const h = harness([rule('combo', { kind: 'newToolCombination', learningS: 0 })]);
    await h.feed(rec(0, { target: 'a__x' }), rec(1, { target: 'b__y', decision: deny('policy.forbid'), outcome: 'denied' }), rec(2, { session: null, target: 'c__z' }));
    assert.equal(h.alerts.length, 0);
    await h.feed(rec(3, { target: 'd__w' }));
    assert.equal(h.alerts.length, 1, 'learningS 0: the first new pair alerts');
  });
});

describe('outsideHours', () => {
  const r = rule('hours', { kind: 'outsideHours', timeZone: 'America/New_York', from: '09:00', to: '17:00' });

  test('inside working hours in the zone: quiet; after hours and at the weekend: fires', async () => {
    const h = harness([r]);
    await h.feed(rec(0, { time: '2026-12-07T15:00:00.000Z' })); // Mon 10:00 EST
    assert.equal(h.alerts.length, 0);
    await h.feed(rec(0, { agent: 'a2', time: '2026-12-07T23:30:00.000Z' })); // Mon 18:30 EST
    await h.feed(rec(0, { agent: 'a3', time: '2026-12-12T15:00:00.000Z' })); // Sat 10:00 EST
    assert.deepEqual(
      h.alerts.map((a) => [a.agent, a.detail.localDay, a.detail.localTime]),
      [
        ['a2', 'mon', '18:30'],
        ['a3', 'sat', '10:00'],
      ],
    );
  });

  test('daylight saving time comes from Intl: 13:30 UTC is 09:30 in July, 08:30 in December', async () => {
    const h = harness([r]);
    await h.feed(rec(0, { agent: 'summer', time: '2026-07-06T13:30:00.000Z' }), rec(0, { agent: 'winter', time: '2026-12-07T13:30:00.000Z' }));
    assert.deepEqual(h.alerts.map((a) => [a.agent, a.detail.localTime]), [['winter', '08:30']]);
  });

  test('a night shift belongs to the day it starts', () => {
    const shift = { days: ['mon' as const], from: '22:00', to: '06:00' };
    assert.equal(withinHours(shift, { day: 'mon', minutes: 23 * 60 }), true);
    assert.equal(withinHours(shift, { day: 'tue', minutes: 5 * 60 }), true);
    assert.equal(withinHours(shift, { day: 'tue', minutes: 7 * 60 }), false);
    assert.equal(withinHours(shift, { day: 'sun', minutes: 23 * 60 }), false);
    assert.equal(withinHours(shift, { day: 'mon', minutes: 5 * 60 }), false);
  });
});

describe('alerts, audit and isolation', () => {
  test('isolate: true isolates the agent, by anomaly:<rule>, and says so in the alert', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 1, windowS: 60, isolate: true })]);
    await h.feed(rec(0), rec(1));
    assert.equal(h.isolations.length, 1);
    const [agent, reason, by] = h.isolations[0]!;
    assert.equal(agent, 'a1');
    assert.equal(by, 'anomaly:burst');
    assert.match(reason, /anomaly rule burst/);
    assert.equal(h.alerts[0]!.detail.isolation, 'isolated');
  });

  test('a failing isolation is reported in the alert; none wired: unavailable', async () => {
    const failing = harness([rule('burst', { kind: 'burst', max: 1, windowS: 60, isolate: true })], {
      isolate: () => Promise.reject(Object.assign(new Error('x'), { code: 'ERR_STORE' })),
    });
    await failing.feed(rec(0), rec(1));
    assert.equal(failing.alerts[0]!.detail.isolation, 'failed (ERR_STORE)');
    const none = harness([rule('burst', { kind: 'burst', max: 1, windowS: 60, isolate: true })], { isolate: undefined });
    await none.feed(rec(0), rec(1));
    assert.equal(none.alerts[0]!.detail.isolation, 'unavailable');
  });

  test('each alert is audited as a system alert record, which the engine then ignores', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 1, windowS: 60 })]);
    await h.feed(rec(0), rec(1));
    assert.equal(h.audits.length, 1);
    const e = h.audits[0]!;
    assert.deepEqual([e.door, e.method, e.target, e.agent, e.decision.rule], ['system', 'alert', 'anomaly.burst', 'a1', 'anomalies.burst']);
    let seq = 1_000_000;
    await h.feed(...Array.from({ length: 5 }, () => ({ ...e, seq: seq++, prevHash: '', hash: '' })));
    assert.equal(h.alerts.length, 1);
  });

  test('a notifier or audit that throws does not stop the rules', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 1, windowS: 60 }), rule('d', { kind: 'denialSpike', max: 1, windowS: 60 })], {
      notify: () => {
        throw new Error('boom');
      },
      audit: () => {
        throw new Error('boom');
      },
    });
    await h.feed(rec(0, { decision: deny('x.y'), outcome: 'denied' }), rec(1, { decision: deny('x.y'), outcome: 'denied' }));
    assert.equal(h.engine.stats.counterKeys, 2);
  });

  test('a full backlog drops records, counted, with one alert', async () => {
    const h = harness([rule('burst', { kind: 'burst', max: 1000, windowS: 60 })], { maxBacklog: 2 });
    for (let i = 0; i < 10; i++) h.engine.observe(rec(i));
    await h.engine.idle();
    assert.ok(h.engine.stats.dropped >= 6, `dropped ${h.engine.stats.dropped}`);
    assert.deepEqual(h.alerts.map((a) => a.kind), ['anomaly.backlog']);
  });
});

describe('memory stays under the caps', () => {
  test('many agents and tools: counters, learned sets and sessions are bounded', async () => {
    const h = harness([
      rule('burst', { kind: 'burst', max: 3, windowS: 3600, per: 'tool', maxKeys: 100 }),
      rule('combo', { kind: 'newToolCombination', learningS: 0, maxAgents: 20, maxPairsPerAgent: 30, maxSessions: 50, maxToolsPerSession: 8 }),
      rule('secrets', { kind: 'newSecretHost', learningS: 0, maxAgents: 20, maxPairsPerAgent: 10 }),
    ]);
    for (let i = 0; i < 5_000; i++) {
      h.engine.observe(rec(i / 100, { agent: `agent${i % 700}`, session: `s${i % 300}`, target: `up__tool${(i * 7) % 97}` }));
      h.engine.observe(rec(i / 100, { agent: `agent${i % 700}`, door: 'network', method: 'GET', target: `h${i % 53}.example:443`, detail: { secrets: [`k${i % 11}`] } }));
      if (i % 500 === 0) await h.engine.idle();
    }
    await h.engine.idle();
    const s = h.engine.stats;
    assert.ok(s.counterKeys <= 100, `counter keys ${s.counterKeys}`);
    assert.ok(s.counterEntries <= 100 * 4, `counter entries ${s.counterEntries}`);
    assert.ok(s.learnedAgents <= 40, `learned agents ${s.learnedAgents}`);
    assert.ok(s.learnedPairs <= 20 * 30 + 20 * 10, `learned pairs ${s.learnedPairs}`);
    assert.ok(s.sessions <= 50, `sessions ${s.sessions}`);
    assert.ok(s.counterKeys > 50 && s.learnedAgents > 10, 'the caps were reached, not avoided');
  });

  test('property: any record stream keeps every structure within its cap', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ agent: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), tool: fc.string({ minLength: 1, maxLength: 4 }), session: fc.constantFrom('1', '2', '3', '4'), at: fc.nat(600), denied: fc.boolean() }), { maxLength: 200 }),
        async (events) => {
          const h = harness([
            rule('burst', { kind: 'burst', max: 2, windowS: 60, per: 'tool', maxKeys: 5 }),
            rule('d', { kind: 'denialSpike', max: 2, windowS: 60, maxKeys: 3 }),
            rule('combo', { kind: 'newToolCombination', learningS: 0, maxAgents: 2, maxPairsPerAgent: 4, maxSessions: 3, maxToolsPerSession: 2 }),
          ]);
          await h.feed(...events.map((e) => rec(e.at, { agent: e.agent, target: e.tool, session: e.session, ...(e.denied ? { decision: deny('policy.forbid'), outcome: 'denied' as const } : {}) })));
          const s = h.engine.stats;
          return s.counterKeys <= 8 && s.counterEntries <= 5 * 3 + 3 * 3 && s.learnedAgents <= 2 && s.learnedPairs <= 8 && s.sessions <= 3;
        },
      ),
      { numRuns: 100 },
    );
  });
});

test('T0 is a Monday at noon UTC (the fixtures rely on it)', () => {
  assert.equal(new Date(T0).getUTCDay(), 1);
});

describe('on a real audit log', () => {
  test('attached to AuditLog.subscribe: alerts carry the committed seqs, and its own alert record is committed and ignored', async () => {
    const store = await openSqliteStore(':memory:');
    const log = await AuditLog.open(store, { checkpointEvery: 100 });
    try {
      const h = harness([rule('burst', { kind: 'burst', max: 2, windowS: 60 })], { audit: (e) => void log.append(e).catch(() => undefined) });
      const stop = h.engine.attach(log);
      const seqs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = rec(i);
        seqs.push((await log.append({ time: r.time, door: r.door, agent: r.agent, session: r.session ?? null, method: r.method, target: r.target ?? null, decision: r.decision, outcome: r.outcome, durationMs: r.durationMs })).seq);
      }
      await h.engine.idle();
      assert.equal(h.alerts.length, 1);
      assert.deepEqual(h.alerts[0]!.detail.records, seqs);
      await log.flush();
      await h.engine.idle();
      const last = await store.lastAudit();
      assert.equal(last?.method, 'alert');
      assert.equal(last?.target, 'anomaly.burst');
      assert.equal(h.alerts.length, 1);
      stop();
    } finally {
      await log.close();
      await store.close();
    }
  });
});
