// The viewer in a real Chromium against a real relay and agent (synthetic capture, 2 monitors
// of 640x400, JPEG): the list shows the agent; the picture is drawn, moves, and is acknowledged
// (the relay's /api/desktops shows this viewer's acks); the overlay reads fps > 0; the choice is
// kept in the URL; monitors singly or side by side; fit and 1:1; control on maps a click to
// remote pixels, control off sends nothing; no console errors; screenshots at three sizes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  Relay, Agent, freePort, scratch, launchBrowser, watchConsole, eventually, pictureMoves,
  canvasFingerprints, screenshot, viewerStatus, sleep,
} from './lib/harness.mjs';

let relay, agent, browser, page, consoleLog, dir;

before(async () => {
  dir = scratch('viewer');
  const port = await freePort();
  relay = await new Relay(port, join(dir, 'relay')).startAndWait();
  agent = new Agent({ port, clientId: 'e2e-pc', name: 'E2E desktop', stateDir: join(dir, 'agent'), inputLog: join(dir, 'input.jsonl') }).start();
  await eventually(async () => (await relay.json('/api/desktops')).desktops.some((d) => d.clientId === 'e2e-pc'),
    { timeoutMs: 30000, what: 'the agent registers' });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  consoleLog = watchConsole(page);
  page.on('dialog', (d) => { consoleLog.errors.push({ at: Date.now(), text: `dialog: ${d.message()}` }); d.dismiss(); });
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await relay?.stop();
});

test('the list shows the agent; opening it draws a moving picture; fps > 0; acks reach the relay', async () => {
  await page.goto(`${relay.base}/`);
  await eventually(async () => (await viewerStatus(page)).state === 'connected', { what: 'status connected' });
  const item = page.locator('#desktops button[data-client-id="e2e-pc"]');
  await eventually(async () => (await item.count()) === 1, { what: 'the desktop is listed' });
  const text = await item.textContent();
  assert.match(text, /E2E desktop/);
  assert.match(text, /online/);
  assert.match(text, /2 monitors/);
  await item.click();
  await pictureMoves(page, { what: 'the picture moves' });
  assert.equal(new URL(page.url()).searchParams.get('desktop'), 'e2e-pc', 'the choice is kept in the URL');
  const fps = await eventually(async () => {
    const v = Number(await page.locator('#overlay').getAttribute('data-fps'));
    return v > 0 ? v : null;
  }, { what: 'overlay fps > 0' });
  assert.ok(fps > 0);
  assert.match(await page.locator('#overlay').textContent(), /quality\s+\d+/);
  const viewerId = await page.evaluate(() => window.deskstreamViewer.client.viewerId);
  const acked = await eventually(async () => {
    const d = (await relay.json('/api/desktops')).desktops.find((x) => x.clientId === 'e2e-pc');
    const mine = (d?.viewerStats || []).find((v) => v.viewerId === viewerId);
    return mine && mine.acked > 5 ? mine : null;
  }, { what: `/api/desktops shows frames acknowledged by viewer ${viewerId}` });
  assert.ok(acked.latencyP50Ms !== null);
  // Both monitors side by side, each at the remote resolution.
  const f = await canvasFingerprints(page);
  assert.deepEqual(f.map((c) => [c.monitor, c.w, c.h]), [[0, 640, 400], [1, 640, 400]]);
  await screenshot(page, 'viewer.png');
});

test('a link opens the same desktop and monitor; one monitor alone; fit, 1:1 and full screen', async () => {
  await page.goto(`${relay.base}/?desktop=e2e-pc&monitor=1`);
  await pictureMoves(page, { what: 'monitor 1 alone moves' });
  let f = await canvasFingerprints(page);
  assert.deepEqual(f.map((c) => c.monitor), [1]);
  assert.equal(await page.locator('#monitor').inputValue(), '1');
  // Fit: the canvas fills the viewport's width or height; 1:1: CSS size = remote pixels.
  const fit = await page.locator('#screens canvas').boundingBox();
  const box = await page.locator('#screens').boundingBox();
  assert.ok(Math.abs(fit.width - box.width) <= 2 || Math.abs(fit.height - box.height) <= 2, `fit: ${JSON.stringify([fit, box])}`);
  await page.click('#scale-1');
  const one = await page.locator('#screens canvas').boundingBox();
  assert.equal(Math.round(one.width), 640);
  assert.equal(Math.round(one.height), 400);
  assert.equal(new URL(page.url()).searchParams.get('scale'), '1:1');
  await page.click('#scale-fit');
  // Full screen: the picture area alone, the canvas fitted to the whole window.
  await page.click('#fullscreen');
  await eventually(async () => (await page.evaluate(() => document.fullscreenElement?.id)) === 'viewport', { what: 'full screen' });
  await eventually(async () => {
    const c = await page.locator('#screens canvas').boundingBox();
    const vp = page.viewportSize();
    return Math.abs(c.width - vp.width) <= 2 || Math.abs(c.height - vp.height) <= 2;
  }, { what: 'the canvas fills the screen' });
  await page.evaluate(() => document.exitFullscreen());
  await eventually(async () => (await page.evaluate(() => document.fullscreenElement)) === null, { what: 'full screen left' });
  await page.selectOption('#monitor', 'all');
  await eventually(async () => (await canvasFingerprints(page)).length === 2, { what: 'both monitors again' });
  assert.equal(new URL(page.url()).searchParams.get('monitor'), null);
  f = await canvasFingerprints(page);
  assert.deepEqual(f.map((c) => c.monitor), [0, 1]);
});

test('control off: clicks, wheel and keys send nothing', async () => {
  await page.goto(`${relay.base}/?desktop=e2e-pc`);
  await pictureMoves(page);
  const queuedBefore = await relay.counter('commands_queued');
  const canvas = page.locator('#screens canvas[data-monitor="0"]');
  const b = await canvas.boundingBox();
  await page.mouse.click(b.x + b.width / 2, b.y + b.height / 2);
  await page.mouse.wheel(0, 100);
  await page.keyboard.press('a');
  await sleep(1500); // commands are sent at once; 1.5 s is ample for one to reach the agent
  assert.deepEqual(agent.inputs(), [], 'the agent received no input');
  assert.equal(await relay.counter('commands_queued'), queuedBefore, 'the relay queued no command');
});

test('control on: a click at a known scaled position reaches the agent at the right remote pixels', async () => {
  await page.goto(`${relay.base}/?desktop=e2e-pc`);
  await pictureMoves(page);
  await page.check('#control');
  const canvas = page.locator('#screens canvas[data-monitor="1"]');
  const b = await canvas.boundingBox();
  assert.ok(b.width < 640 * 0.9 || b.width > 640 * 1.1, `the canvas is scaled (${b.width} px for 640)`);
  // A quarter across and three quarters down monitor 1: remote (160, 300).
  await page.mouse.click(b.x + b.width * 0.25 + 0.5, b.y + b.height * 0.75 + 0.5);
  const down = await eventually(() => agent.inputs().find((e) => e.event === 'mouse_down'), { what: 'mouse_down reaches the agent' });
  assert.equal(down.monitor, 1);
  assert.ok(Math.abs(down.x - 160) <= 1, `x ${down.x} ≈ 160`);
  assert.ok(Math.abs(down.y - 300) <= 1, `y ${down.y} ≈ 300`);
  assert.equal(down.button, 0);
  await eventually(() => agent.inputs().find((e) => e.event === 'mouse_up'), { what: 'mouse_up reaches the agent' });
  // Tab and Backspace go to the remote desktop, not to the browser's focus handling.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Backspace');
  const keys = await eventually(() => {
    const k = agent.inputs().filter((e) => e.event === 'key_down').map((e) => e.key);
    return k.includes('Tab') && k.includes('Backspace') ? k : null;
  }, { what: 'Tab and Backspace reach the agent' });
  assert.deepEqual(keys, ['Tab', 'Backspace']);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'screens', 'Tab did not move the focus');
  await page.mouse.move(b.x + 10, b.y + 10);
  await page.mouse.wheel(0, 120);
  const wheel = await eventually(() => agent.inputs().find((e) => e.event === 'wheel'), { what: 'wheel reaches the agent' });
  assert.equal(wheel.deltaY, 120);
  await page.uncheck('#control');
});

test('favicon is served; the page fits a phone and 4K without horizontal scrolling', async () => {
  const r = await fetch(`${relay.base}/favicon.ico`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'image/x-icon');
  for (const [w, h, file] of [[390, 844, 'viewer-phone.png'], [3840, 2160, null]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.goto(`${relay.base}/?desktop=e2e-pc`);
    await pictureMoves(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at ${w}x${h} (${overflow} px too wide)`);
    const c = await page.locator('#screens canvas').first().boundingBox();
    assert.ok(c.x >= 0 && c.x + c.width <= w + 1, `the picture fits at ${w}x${h}`);
    if (file) await screenshot(page, file);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

test('no console errors', () => consoleLog.assertNone());
