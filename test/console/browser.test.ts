/**
 * The console end to end in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): sign in; a real MCP client's call held for approval
 * appears live on the approvals page and is approved from it; the held call
 * then completes; the audit explorer shows its record; no CSP violation on any
 * page. Takes a screenshot of each page (1280x800): into docs/console/ with
 * BASTION_SCREENSHOTS=1 (how the committed ones are made), else a temp dir.
 *
 * Needs /usr/bin/chromium (or $CHROMIUM): without it the test is skipped
 * locally and fails under CI=true.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, TEST_KEY, connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { kekFromBytes } from '../../src/vault/kek.ts';
import { Secret } from '../../src/util/secret.ts';
import { ADMIN_KEY, ALICE_KEY, consoleYaml } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && process.env.CI === 'true') throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package chromium`);
// The committed screenshots are refreshed with BASTION_SCREENSHOTS=1; a plain run writes them to a temp dir, leaving the checkout clean.
const SHOTS = process.env.BASTION_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'console') : mkdtempSync(join(tmpdir(), 'bastion-console-shots-'));

describe('console in Chromium', { skip: present ? false : `no Chromium at ${CHROMIUM}`, timeout: 60_000 }, () => {
  let gw: TestGateway;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    gw = await startGateway(tempDir(), consoleYaml([], 'secrets:\n  github:\n    hosts: [api.github.com]\n', [
        // Held by a condition on provenance: the approval then shows where each argument came from.
        'tools: ["bad__echo"]',
        'secrets: [github]',
        'approveWhen:',
        '  - tool: bad__echo',
        '    argsFrom: [model, untrusted]',
      ]), { T_KEY: TEST_KEY, T_ADMIN: ADMIN_KEY, T_ALICE: ALICE_KEY }, { kek: kekFromBytes(new Uint8Array(32).fill(7)) });
    // Something on every page: a stored secret, a ban, an alert.
    await gw.gateway.vault?.add('github', new Secret('ghp_example_value_never_shown_0123456789'), { hosts: ['api.github.com'], header: 'authorization', format: 'Bearer {}' });
    await gw.gateway.store.addBan({ agent: 'demo', user: 'mallory', at: Date.now(), rule: 'extraction', reason: 'asked for the system prompt' }, [3_600_000], 86_400_000);
    await gw.gateway.auditStep.durable({
      time: new Date().toISOString(),
      door: 'model',
      agent: 'demo',
      user: 'mallory',
      method: 'alert',
      target: 'prompt.extraction',
      decision: { effect: 'deny', reason: 'prompt.extraction', rule: 'alerts' },
      outcome: 'ok',
      durationMs: 0,
      detail: { severity: 'high', summary: 'prompt extraction attempt by mallory' },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // Runs in the page (a string: the test is compiled without the DOM library).
    await page.addInitScript({
      content: "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
    });
    page.on('console', (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    mkdirSync(SHOTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  const shot = async (name: string): Promise<Buffer> => {
    // The toast is transient: not part of the page.
    await page.evaluate("document.getElementById('flash').hidden = true");
    return page.screenshot({ path: join(SHOTS, `${name}.png`) });
  };
  const noViolations = async (): Promise<void> => {
    const inPage = await page.evaluate<string[]>('window.__csp ?? []');
    assert.deepEqual([...inPage, ...cspViolations], [], 'no CSP violation');
    assert.deepEqual(pageErrors, [], 'no script error');
  };

  test('sign in, approve a held call live, see it in the audit explorer, visit every page', async () => {
    const base = new URL('/console/', gw.url).href;
    await page.goto(base);
    await page.waitForSelector('#sign-in');
    await shot('sign-in');
    await page.fill('#admin-key', 'wrong-key-0123456789abcdefghij');
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('#sign-in-error:not([hidden])');
    assert.match((await page.textContent('#sign-in-error')) ?? '', /Wrong admin key/);
    await page.fill('#admin-key', ALICE_KEY);
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('#page-approvals');
    assert.match((await page.textContent('#who')) ?? '', /alice/);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'bastion_console');
    assert.ok(session?.httpOnly, 'HttpOnly');
    assert.equal(session?.sameSite, 'Strict');
    assert.equal(session?.path, '/console');
    assert.equal(await page.evaluate<string>('document.cookie'), '', 'the page cannot read the cookie');

    // A real MCP client calls a tool that needs approval: the card appears without a reload.
    const client = await connect(gw.url, TEST_KEY);
    try {
      const held = client.callTool({ name: 'bad__echo', arguments: { text: 'approved from the browser' } }, undefined, { timeout: 30_000 });
      const card = page.locator('article[data-approval]', { hasText: 'bad__echo' });
      await card.waitFor({ timeout: 15_000 });
      assert.match((await card.textContent()) ?? '', /approved from the browser/);
      assert.match((await card.textContent()) ?? '', /demo/);
      assert.match((await card.locator('table').textContent()) ?? '', /model/, 'the argument came from the model');
      assert.match((await card.locator('.policy').textContent()) ?? '', /approve.*agents\.demo\.approveWhen\[0\]/, 'the condition that held it');
      await card.locator('input.reason').fill('checked the text');
      await shot('approvals');
      await card.locator('button[data-action=approve]').click();
      const result = (await held) as { content: { text: string }[] };
      assert.equal(result.content[0]?.text, 'approved from the browser');
      await page.locator('#pending .empty').waitFor({ timeout: 10_000 });
      await page.locator('#recent', { hasText: 'console:alice' }).waitFor({ timeout: 10_000 });
    } finally {
      await client.close();
    }

    // The audit explorer shows the call's record.
    await gw.gateway.audit.flush();
    await page.goto(`${base}#/audit`);
    await page.waitForSelector('#audit-results table');
    await page.selectOption('#audit-filters select[name=door]', 'tool');
    await page.fill('#audit-filters input[name=method]', 'tools/call');
    await page.click('#audit-filters button[type=submit]');
    const row = page.locator('#audit-results tbody tr', { hasText: 'bad__echo' }).first();
    await row.waitFor();
    await page.waitForSelector('#chain-status .status-ok');
    await shot('audit');
    await row.click();
    await page.waitForSelector('#record-detail');
    const detail = (await page.textContent('#record-detail')) ?? '';
    assert.match(detail, /approval\.granted|approved/);
    assert.match(detail, /bad__echo/);
    await shot('audit-record');

    for (const [name, ready] of [
      ['agents', '#agent-detail'],
      ['secrets', '#page-secrets table'],
      ['bans', '#page-bans table'],
      ['alerts', '#page-alerts table'],
    ] as const) {
      await page.goto(`${base}#/${name}`);
      await page.waitForSelector(ready);
      if (name === 'secrets') {
        // Add one from the page: the value is typed once and never shown.
        await page.fill('#secret-add input[aria-label=name]', 'slack');
        await page.fill('#secret-add input[aria-label=hosts]', 'slack.com, hooks.slack.com');
        await page.fill('#secret-add input[aria-label=value]', 'xoxb-typed-once-never-shown-0123456789');
        await page.click('#secret-add button[type=submit]');
        await page.locator('#page-secrets tbody tr', { hasText: 'hooks.slack.com' }).waitFor();
        assert.equal((await gw.gateway.vault?.info('slack'))?.version, 1);
        const text = (await page.textContent('#page-secrets')) ?? '';
        assert.doesNotMatch(text, /xoxb-typed/, 'never a value');
        assert.match(text, /github/);
        assert.doesNotMatch(text, /ghp_example/, 'never a value');
      }
      await shot(name);
      if (name === 'alerts') {
        await page.click('#page-alerts button:has-text("Acknowledge")');
        await page.locator('#page-alerts td', { hasText: 'admin:alice' }).waitFor();
      }
    }

    // Incidents: isolate the agent, take a snapshot, restore it.
    await page.goto(`${base}#/incidents`);
    await page.waitForSelector('#page-incidents h1');
    if ((await page.$('#incidents-unavailable')) === null) {
      const controls = page.locator('#page-incidents .row.card');
      await controls.locator('select').selectOption('demo');
      await controls.locator('input.reason').fill('suspected prompt injection');
      await controls.locator('button', { hasText: 'Isolate' }).click();
      await page.locator('#page-incidents tbody tr', { hasText: 'suspected prompt injection' }).first().waitFor();
      assert.equal(gw.gateway.isolations.isIsolated('demo'), true);
      const again = page.locator('#page-incidents .row.card');
      await again.locator('select').selectOption('demo');
      await again.locator('button', { hasText: 'Snapshot' }).click();
      await page.waitForSelector('#snapshot');
      await shot('incidents');
      await again.locator('input.reason').fill('contained, keys rotated');
      await again.locator('button', { hasText: 'Restore' }).click();
      await page.locator('#page-incidents h2', { hasText: 'Restored' }).waitFor();
      assert.equal(gw.gateway.isolations.isIsolated('demo'), false);
    } else await shot('incidents');
    await noViolations();
    // Every action is on the audit chain with the admin's name; no secret value is.
    await gw.gateway.audit.flush();
    const recs = await gw.gateway.store.readAudit(1, 100_000);
    for (const method of ['console.sign-in', 'console.POST /console/api/approvals/:id/approve', 'console.POST /console/api/secrets']) {
      assert.ok(recs.some((r) => r.method === method && r.agent === 'admin:alice' && r.decision.effect === 'allow'), method);
    }
    assert.doesNotMatch(JSON.stringify(recs), /xoxb-typed|ghp_example|alice-key-0123/);
  });
});
