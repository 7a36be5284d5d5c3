// The web console in a real browser (Debian's Chromium driven by
// playwright-core) against a real agent running the Star Wars demo: the
// map shows the X-wing's dropped edge and the TIE fighter's forwarded one;
// the TIE fighter's PUT shows 403, "Access denied" and rule1's L7 rule; in
// the editor, allowing GET /v1/ too previews exactly the flows that would
// change, and applying it makes a real GET from the TIE fighter succeed;
// the agent going away shows a banner and the page comes back with it; a
// stale token is told so. A screenshot of each view goes to
// docs/screenshots (the README shows them).
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { CliAgent, REPO_ROOT } from './cli-agent.js';
import { inCI, requireRoot } from './privileged.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'docs', 'screenshots');
// design.md section 7: the machine has no outside network; Chromium must not try to reach it.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'];
const curl = (a: CliAgent, pod: string, ...args: string[]) => a.run('exec', pod, '--', 'curl', '-s', '-m', '3', ...args);
const SVC = 'deathstar.default.svc.cluster.local';

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

test('the console in Chromium: map, flow detail with the rule, preview then apply, agent away and back, stale token', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t, 'runs an agent with pods')) return;
  if (!existsSync(CHROMIUM)) {
    if (inCI()) throw new Error(`${CHROMIUM} is missing: scripts/setup installs Debian's chromium`);
    t.skip(`${CHROMIUM} is missing (scripts/setup installs it)`);
    return;
  }
  const a = new CliAgent({ tag: 'ui', podCIDR: '10.221.0.0/24', serviceCIDR: '10.231.0.0/24' });
  t.after(() => a.cleanup());
  assert.equal(a.run('demo', 'starwars').status, 0);
  a.ok('apply', '-f', join(REPO_ROOT, 'examples/starwars/rule1-l7.yaml'));
  assert.equal(curl(a, 'xwing', '-XPOST', `${SVC}/v1/request-landing`).status, 28, 'the X-wing is dropped');
  assert.match(curl(a, 'tiefighter', '-XPUT', `${SVC}/v1/exhaust-port`).stdout, /^Access denied\r?\n$/);
  assert.match(curl(a, 'tiefighter', `${SVC}/v1/`).stdout, /^Access denied\r?\n$/, 'GET /v1/ is not allowed by rule1 yet');
  assert.equal(curl(a, 'tiefighter', '-XPOST', `${SVC}/v1/request-landing`).stdout, 'Ship landed\n');
  // A hostile request: its path and a header carry markup, which the console must show as text.
  curl(a, 'tiefighter', '-H', 'X-Evil: <img src=x onerror=alert(1)>', `http://${SVC}/v1/<script>alert(1)</script>`);
  const url = a.json<{ url: string; port: number }>('ui');
  assert.match(url.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=/);

  const profile = mkdtempSync(join(tmpdir(), 'mbr-chromium-'));
  t.after(() => rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true, viewport: { width: 1400, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(m.text()) && problems.push(`console: ${m.text()}`));

  // The map: xwing → deathstar dropped, tiefighter → deathstar forwarded.
  await page.goto(url.url);
  assert.equal(new URL(page.url()).search, '', 'the token left the address bar');
  const xwing = page.locator('[data-testid=map-edge][data-source="default/xwing"][data-target="default/deathstar"]');
  await xwing.first().waitFor({ timeout: 15_000 });
  assert.ok(Number(await xwing.first().getAttribute('data-dropped')) > 0, 'the X-wing edge is dropped');
  assert.match((await xwing.first().getAttribute('class')) ?? '', /dropped/, 'and stands out');
  const tie = page.locator('[data-testid=map-edge][data-source="default/tiefighter"][data-target="default/deathstar"]');
  assert.ok(Number(await tie.first().getAttribute('data-forwarded')) > 0, 'the TIE fighter edge is forwarded');
  await shot(page, 'map');

  // The flows: the TIE fighter's PUT, its 403, "Access denied" and rule1's L7 rule.
  await page.click('[data-testid=nav-flows]');
  await page.fill('input[aria-label="http method"]', 'PUT');
  const putRow = page.locator('[data-testid=flow-row]', { hasText: 'exhaust-port' });
  await putRow.first().click();
  const detail = page.locator('[data-testid=flow-detail]');
  await detail.waitFor();
  assert.match(await detail.locator('[data-testid=http-summary]').innerText(), /PUT http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/exhaust-port → 403/);
  assert.match(await detail.locator('[data-testid=reason]').innerText(), /Access denied/);
  assert.match(await detail.locator('[data-testid=rule]').first().innerText(), /CiliumNetworkPolicy default\/rule1 ingress\[0\]/);
  await shot(page, 'flows');

  // Markup in a flow is text: shown as written, never run.
  let dialogs = 0;
  page.on('dialog', (d) => {
    dialogs++;
    void d.dismiss();
  });
  await page.fill('input[aria-label="http method"]', 'GET');
  await page.locator('[data-testid=flow-row]', { hasText: '<script>' }).first().click();
  assert.match(await detail.locator('[data-testid=http-summary]').innerText(), /\/v1\/<script>alert\(1\)<\/script>/);
  assert.match(await detail.innerText(), /<img src=x onerror=alert\(1\)>/);
  assert.equal(await page.locator('main script, main img').count(), 0, 'no element was made of it');
  assert.equal(dialogs, 0);
  await page.fill('input[aria-label="http method"]', 'PUT');
  await putRow.first().click();

  // The editor, opened from the flow's policy: allow GET /v1/ too, preview, apply.
  await detail.locator('[data-testid=policy-link]').first().click();
  const editor = page.locator('[data-testid=editor] .cm-content');
  await page.locator('[data-testid=editor] .cm-content', { hasText: 'rule1' }).waitFor();
  const yaml = readFileSync(join(REPO_ROOT, 'examples/starwars/rule1-l7.yaml'), 'utf8');
  const edited = yaml.replace(/(\n(\s*)- method: "?POST"?\n\s*path: "?\/v1\/request-landing"?\n)/, '$1$2- method: "GET"\n$2  path: "/v1/"\n');
  assert.notEqual(edited, yaml, 'the example has the HTTP rule to extend');
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(edited);
  await page.locator('[data-testid=validation]', { hasText: /^valid/ }).waitFor();
  await page.click('[data-testid=preview]');
  const summary = page.locator('[data-testid=preview-summary]');
  await summary.waitFor({ timeout: 15_000 });
  const changes = await page.locator('[data-testid=preview-change]').allInnerTexts();
  assert.ok(changes.length >= 1, await summary.innerText());
  for (const c of changes) assert.match(c, /^denied → allowed: default\/tiefighter:\d+ → default\/deathstar-[a-z0-9]+:80 GET http:\/\/deathstar\.default\.svc\.cluster\.local\/v1\/ → 403/, 'exactly the GET /v1/ flows change');
  await shot(page, 'policies');
  // The preview is drawn on the map, on the TIE fighter's edge.
  await page.click('[data-testid=nav-map]');
  const marked = page.locator('[data-testid=map-edge][data-preview]');
  await marked.first().waitFor({ timeout: 10_000 });
  assert.deepEqual([await marked.count(), await marked.first().getAttribute('data-source'), await marked.first().getAttribute('data-preview')], [1, 'default/tiefighter', `${changes.length} to allowed, 0 to denied`]);
  await shot(page, 'map-preview');
  await page.click('[data-testid=nav-policies]');
  await page.locator('[data-testid=editor] .cm-content', { hasText: 'GET' }).waitFor();
  await page.click('[data-testid=apply]');
  await page.locator('[data-testid=apply-message]', { hasText: 'configured' }).waitFor({ timeout: 15_000 });
  assert.match(curl(a, 'tiefighter', `${SVC}/v1/`).stdout, /deathstar|api/i, 'a real GET /v1/ now succeeds');

  // History: both versions (the CLI's apply and the console's), a diff, and a rollback that is an apply.
  const versions = page.locator('[data-testid=history-version]');
  await versions.nth(1).waitFor({ timeout: 10_000 });
  assert.match(await versions.nth(0).innerText(), /configured/);
  assert.match(await versions.nth(1).innerText(), /created/);
  await versions.nth(1).click();
  assert.match(await page.locator('[data-testid=history-diff]').innerText(), /\+\s+- method: "?GET"?/, 'the diff shows what the edit added');
  await page.locator('[data-testid=rollback]').nth(1).click();
  await page.locator('[data-testid=apply-message]', { hasText: 'configured' }).waitFor({ timeout: 15_000 });
  assert.match(curl(a, 'tiefighter', `${SVC}/v1/`).stdout, /^Access denied\r?\n$/, 'rolled back: GET /v1/ is denied again');
  await versions.nth(2).waitFor({ timeout: 10_000 });

  // Invalid YAML cannot be applied and is marked.
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText('\n  bad: [unclosed\n');
  await page.locator('[data-testid=validation]', { hasText: /problem/ }).waitFor();
  assert.equal(await page.locator('[data-testid=apply]').isDisabled(), true, 'cannot apply');
  await page.locator('.cm-lint-marker-error').first().waitFor();

  // The agent goes away: a banner; it comes back: the page is live again.
  await page.click('[data-testid=nav-map]');
  process.kill(a.json<{ agent: { pid: number } }>('status').agent.pid, 'SIGKILL');
  await page.locator('[data-testid=banner]', { hasText: 'not answering' }).waitFor({ timeout: 15_000 });
  await shot(page, 'agent-away');
  a.up();
  await page.locator('[data-testid=feed-state]', { hasText: 'live' }).waitFor({ timeout: 20_000 });
  assert.equal(await page.locator('[data-testid=banner]').count(), 0, 'the banner goes');

  // Endpoints and identities.
  await page.click('[data-testid=nav-endpoints]');
  await page.locator('[data-testid=endpoints] td', { hasText: 'default/deathstar' }).first().waitFor();
  await shot(page, 'endpoints');
  await page.click('[data-testid=nav-identities]');
  await page.locator('[data-testid=identities] td', { hasText: 'k8s:class=xwing' }).first().waitFor();
  await shot(page, 'identities');

  // A new token: the open page is told its link is stale; a wrong link is refused with the way out.
  a.ok('ui', '--new-token');
  await page.click('[data-testid=nav-endpoints]');
  await page.locator('[data-testid=banner]', { hasText: 'stale' }).waitFor({ timeout: 15_000 });
  const other = await context.newPage();
  const res = await other.goto(`http://127.0.0.1:${url.port}/?token=not-the-token`);
  assert.equal(res?.status(), 401);
  assert.match(await other.innerText('body'), /membrane ui/);
  assert.deepEqual(problems, []);

  await context.close();
  const down = a.down();
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(a.leaks(), []);
});
