// The dashboard in a real Chromium: every desktop with numbers that change, a chart, the
// relay's instance id and uptime; a desktop that leaves is shown as offline. And agent-supplied
// names are text everywhere: a desktop named <img src=x onerror=alert(1)> shows as those
// characters in the viewer and the dashboard, and no dialog opens (noVNC's CVE-2017-18635).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  Relay, Agent, freePort, scratch, launchBrowser, watchConsole, eventually, pictureMoves, screenshot,
} from './lib/harness.mjs';

const EVIL = '<img src=x onerror=alert(1)>';
let relay, agents, browser, viewer, dashboard, consoleLogs, dialogs, dir;

before(async () => {
  dir = scratch('dashboard');
  const port = await freePort();
  relay = await new Relay(port, join(dir, 'relay')).startAndWait();
  agents = [
    new Agent({ port, clientId: 'office-pc', name: 'Office PC', stateDir: join(dir, 'a1'), monitors: 1 }).start(),
    new Agent({ port, clientId: 'evil-pc', name: EVIL, stateDir: join(dir, 'a2'), monitors: 1, fps: 5 }).start(),
  ];
  await eventually(async () => (await relay.json('/api/desktops')).desktops.length === 2, { timeoutMs: 30000, what: 'both agents registered' });
  browser = await launchBrowser();
  dialogs = [];
  viewer = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  dashboard = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  consoleLogs = [watchConsole(viewer), watchConsole(dashboard)];
  for (const p of [viewer, dashboard]) p.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
});

after(async () => {
  await browser?.close();
  for (const a of agents || []) await a.stop();
  await relay?.stop();
});

test('a desktop named <img src=x onerror=alert(1)> is shown as text in the viewer; no dialog opens', async () => {
  await viewer.goto(`${relay.base}/?desktop=evil-pc`);
  const item = viewer.locator('#desktops button[data-client-id="evil-pc"] .name');
  await eventually(async () => (await item.count()) === 1, { what: 'the evil desktop is listed' });
  assert.equal(await item.textContent(), EVIL);
  await pictureMoves(viewer, { what: 'its picture moves' });
  assert.equal(await viewer.locator('#desktops img, #sidebar img').count(), 0, 'no element was made from the name');
  assert.deepEqual(dialogs, []);
});

test('the dashboard lists every desktop with numbers that change, a chart, the relay instance and uptime', async () => {
  await dashboard.goto(`${relay.base}/dashboard`);
  const row = (id) => dashboard.locator(`#desktop-table tbody tr[data-client-id="${id}"]`);
  await eventually(async () => (await row('office-pc').count()) === 1 && (await row('evil-pc').count()) === 1, { what: 'both rows' });
  // The viewer watches evil-pc: its fps and latency figures fill in and move.
  const cells = async () => (await row('evil-pc').locator('td').allTextContents());
  const first = await eventually(async () => { const c = await cells(); return /\d/.test(c[3]) && /^\d/.test(c[4]) ? c : null; },
    { what: 'fps and latency of the watched desktop', timeoutMs: 20000 });
  assert.equal(first[0], `${EVIL} (evil-pc)`, 'the name is text');
  assert.equal(first[1], 'online');
  assert.equal(first[2], '1', 'one viewer');
  const changed = await eventually(async () => {
    const c = await cells();
    return c.slice(3, 7).join('|') !== first.slice(3, 7).join('|') ? c : null;
  }, { what: 'the numbers change', timeoutMs: 20000 });
  assert.notDeepEqual(changed.slice(3, 7), first.slice(3, 7));
  assert.match(changed[5], /^\d+$/, 'quality');
  assert.equal(await row('evil-pc').locator('canvas').count(), 1, 'a chart');
  const instance = (await relay.json('/readyz')).instanceId;
  assert.equal(await dashboard.locator('#instance').textContent(), instance);
  assert.match(await dashboard.locator('#uptime').textContent(), /^\d+ (s|min)/);
  assert.equal(await dashboard.locator('#ready').textContent(), 'relay ready');
  assert.equal(await dashboard.locator('#desktop-table img').count(), 0, 'no element was made from the name');
  assert.deepEqual(dialogs, []);
  await eventually(async () => (await dashboard.locator('#viewer-table tbody tr').count()) >= 1, { what: 'the viewer row' });
  await dashboard.waitForTimeout(4000); // a few chart points
  await screenshot(dashboard, 'dashboard.png', { fullPage: true });
});

test('a desktop that goes away stays on the dashboard as offline', async () => {
  await agents[0].kill();
  const row = dashboard.locator('#desktop-table tbody tr[data-client-id="office-pc"]');
  await eventually(async () => (await row.locator('td').nth(1).textContent()) === 'offline', { what: 'office-pc offline', timeoutMs: 15000 });
  assert.match(await row.locator('td').last().textContent(), /^offline for/);
  assert.equal(await dashboard.locator('#online-count').textContent(), '1');
});

test('no console errors and no dialog on either page', () => {
  for (const c of consoleLogs) c.assertNone();
  assert.deepEqual(dialogs, []);
});
