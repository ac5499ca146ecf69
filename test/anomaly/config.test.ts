/**
 * `anomalies:` in bastion.yaml: defaults, replacing and disabling rules, and
 * a rule that does not parse is a config error naming `anomalies.<name>.<field>`
 * (through loadConfig, and the CLI's config exit code).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DEFAULT_ANOMALY_RULES } from '../../src/anomaly/config.ts';
import { configCheck } from '../../src/cli/commands/config-check.ts';
import { serve } from '../../src/cli/commands/serve.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { loadConfig } from '../../src/config/load.ts';
import { isBastionError } from '../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-anomaly-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function write(body: string): string {
  const file = join(dir, `bastion-${n++}.yaml`);
  writeFileSync(file, `version: 1\nstore:\n  sqlite: ./b.db\n${body}`);
  return file;
}

/** Loads `body`; expects ERR_CONFIG_INVALID and returns the issue paths and the message. */
async function invalid(body: string): Promise<{ paths: string[]; message: string }> {
  try {
    await loadConfig(write(body), { env: {} });
  } catch (err) {
    assert.ok(isBastionError(err), 'a BastionError');
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    const issues = (err.detail as { issues?: { path: string }[] } | undefined)?.issues ?? [];
    return { paths: issues.map((i) => i.path), message: err.message };
  }
  assert.fail('the config was accepted');
}

describe('anomalies config', () => {
  test('absent: the default rules are on, outsideHours is not', async () => {
    const { config } = await loadConfig(write(''), { env: {} });
    assert.deepEqual([...config.anomalies.keys()], ['burst', 'denialSpike', 'sensitivePath', 'newSecretHost', 'newToolCombination', 'pinChanges']);
    const burst = config.anomalies.get('burst');
    assert.equal(burst?.kind, 'burst');
    assert.ok(burst?.kind === 'burst' && burst.max === 300 && burst.windowS === 60 && burst.per === 'agent' && burst.isolate === false);
    assert.equal(config.anomalies.get('sensitivePath')?.alert, 'critical');
    assert.equal(DEFAULT_ANOMALY_RULES.size, 6);
  });

  test('a rule of a default name replaces it; enabled: false turns one off; other names add rules', async () => {
    const { config } = await loadConfig(
      write(`anomalies:
  burst: { kind: burst, max: 5, windowS: 10, per: tool, isolate: true, alert: critical }
  newToolCombination: { kind: newToolCombination, enabled: false }
  offToo: { kind: denialSpike, enabled: false }
  night:
    kind: outsideHours
    timeZone: Europe/Berlin
    days: [mon, tue]
    from: "22:00"
    to: "06:00"
`),
      { env: {} },
    );
    assert.equal(config.anomalies.has('newToolCombination'), false);
    assert.equal(config.anomalies.has('offToo'), false);
    const burst = config.anomalies.get('burst');
    assert.ok(burst?.kind === 'burst');
    assert.deepEqual([burst.max, burst.windowS, burst.per, burst.isolate, burst.alert], [5, 10, 'tool', true, 'critical']);
    const night = config.anomalies.get('night');
    assert.ok(night?.kind === 'outsideHours');
    assert.deepEqual([night.timeZone, night.days, night.from, night.to, night.cooldownS], ['Europe/Berlin', ['mon', 'tue'], '22:00', '06:00', 3600]);
  });

  const cases: [string, string, string][] = [
    ['a threshold of 0', 'anomalies:\n  spike: { kind: burst, max: 0 }\n', 'anomalies.spike.max'],
    ['a negative window', 'anomalies:\n  spike: { kind: denialSpike, windowS: -1 }\n', 'anomalies.spike.windowS'],
    ['an unknown field', 'anomalies:\n  spike: { kind: burst, maxx: 3 }\n', 'anomalies.spike.maxx'],
    ['an unknown kind', 'anomalies:\n  odd: { kind: moonPhase }\n', 'anomalies.odd.kind'],
    ['no kind', 'anomalies:\n  odd: { max: 3 }\n', 'anomalies.odd.kind'],
    ['an unknown time zone', 'anomalies:\n  night: { kind: outsideHours, timeZone: Mars/Olympus }\n', 'anomalies.night.timeZone'],
    ['no time zone', 'anomalies:\n  night: { kind: outsideHours }\n', 'anomalies.night.timeZone'],
    ['a bad clock', 'anomalies:\n  night: { kind: outsideHours, timeZone: UTC, from: "25:00" }\n', 'anomalies.night.from'],
    ['from equal to to', 'anomalies:\n  night: { kind: outsideHours, timeZone: UTC, from: "09:00", to: "09:00" }\n', 'anomalies.night.to'],
    ['a relative glob', 'anomalies:\n  files: { kind: sensitivePath, paths: ["secrets/*"] }\n', 'anomalies.files.paths[0]'],
    ['a bad severity', 'anomalies:\n  pins: { kind: pinChanges, alert: loud }\n', 'anomalies.pins.alert'],
    ['isolate not a boolean', 'anomalies:\n  pins: { kind: pinChanges, isolate: "yes" }\n', 'anomalies.pins.isolate'],
    ['a bad rule name', 'anomalies:\n  "bad name": { kind: burst }\n', 'anomalies["bad name"]'],
    ['false instead of a rule', 'anomalies:\n  burst: false\n', 'anomalies.burst'],
    ['enabled not a boolean', 'anomalies:\n  burst: { kind: burst, enabled: no }\n', 'anomalies.burst.enabled'],
  ];
  for (const [what, body, path] of cases) {
    test(`${what} is a config error naming ${path}`, async () => {
      const { paths, message } = await invalid(body);
      assert.ok(paths.some((p) => p === path || p.startsWith(`${path}`)), `issues ${JSON.stringify(paths)} name ${path}`);
      assert.ok(message.includes(path), message);
    });
  }

  test('bastion serve exits with the config code and bastion config check fails, as for other config errors, naming the field', async () => {
    const file = write('anomalies:\n  spike: { kind: burst, max: 0 }\n');
    for (const [command, expected] of [
      [serve, EXIT.CONFIG],
      [configCheck, EXIT.FAILED],
    ] as const) {
      let stderr = '';
      const io: CliIO = { stdout: () => undefined, stderr: (t) => (stderr += t), env: {}, cwd: dir };
      const code = await command(['--config', file], io);
      assert.equal(code, expected, stderr);
      assert.match(stderr, /anomalies\.spike\.max/);
    }
  });
});
