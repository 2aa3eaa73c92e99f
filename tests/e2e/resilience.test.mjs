// The viewer survives what happens to the relay and the agent, without a page reload:
// - relay frozen (SIGSTOP): the page shows "reconnecting" within the heartbeat bound
//   (interval 1 s x (3 missed + 1) = 4 s); then killed and started again on the same port:
//   the page reconnects, subscribes again and the picture moves again;
// - agent killed and started again: the relay's desktop_connected notice brings the picture back;
// - relay down for long: the circuit breaker shows "relay unreachable, retrying in N s" and
//   the page makes only a handful of attempts; the relay back: connected again.
// Console errors are allowed only for the refused connections while the relay is down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  Relay, Agent, DeskstreamProcess, CuttableProxy, freePort, scratch, launchBrowser, watchConsole, eventually, pictureMoves, viewerStatus, sleep,
  screenshot,
} from './lib/harness.mjs';

const HEARTBEAT_BOUND_MS = 1000 * (3 + 1);
let relay, agent, browser, page, consoleLog, dir, port;
const notices = []; // desktop_connected messages the page received, on any of its sockets
const downWindows = []; // [from, to] while the relay was down: refused connections are expected

function relayDown() { downWindows.push([Date.now(), Infinity]); }
function relayUp() { downWindows[downWindows.length - 1][1] = Date.now() + 2000; }
const refusedWhileDown = (e) => downWindows.some(([a, b]) => e.at >= a && e.at <= b) &&
  /ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/.test(e.text);

async function startRelay() {
  relay = await new Relay(port, join(dir, 'relay')).startAndWait();
}

before(async () => {
  dir = scratch('resilience');
  port = await freePort();
  await startRelay();
  agent = new Agent({ port, clientId: 'resilient-pc', stateDir: join(dir, 'agent'), monitors: 1 }).start();
  await eventually(async () => (await relay.json('/api/desktops')).desktops.length === 1, { timeoutMs: 30000, what: 'agent registered' });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  consoleLog = watchConsole(page);
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (typeof f.payload === 'string' && f.payload.includes('"desktop_connected"')) notices.push(JSON.parse(f.payload));
  }));
  await page.goto(`${relay.base}/?desktop=resilient-pc`);
  await pictureMoves(page, { what: 'the first picture moves' });
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  relay?.signal('SIGCONT');
  await relay?.stop();
});

test('relay frozen: reconnecting within the heartbeat bound; relay restarted: the picture moves again without reload', async () => {
  const navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  relayDown();
  relay.signal('SIGSTOP'); // sockets stay open, nothing answers: only the heartbeat can tell
  const frozenAt = Date.now();
  await eventually(async () => (await viewerStatus(page)).state !== 'connected',
    { timeoutMs: HEARTBEAT_BOUND_MS + 3000, intervalMs: 50, what: 'the page leaves "connected"' });
  const detectedMs = Date.now() - frozenAt;
  const status = await viewerStatus(page);
  assert.equal(status.state, 'reconnecting', JSON.stringify(status));
  assert.match(status.text, /reconnecting/);
  // The bound plus one check period (1/4 interval) and polling; fails when no heartbeat check runs.
  assert.ok(detectedMs <= HEARTBEAT_BOUND_MS + 1500, `detected after ${detectedMs} ms (bound ${HEARTBEAT_BOUND_MS} ms)`);
  console.log(`# relay freeze detected by the page after ${detectedMs} ms`);

  await relay.kill(); // SIGKILL works on a stopped process
  await startRelay();
  relayUp();
  const restartedAt = Date.now();
  // Up to the page's breaker (20 s) when the restart took long; the agent's own breaker (60 s
  // after 5 failures, docs/protocol.md) bounds when the picture can come back.
  await eventually(async () => (await viewerStatus(page)).state === 'connected', { timeoutMs: 40000, what: 'connected again' });
  console.log(`# page connected again ${Date.now() - restartedAt} ms after the relay restarted`);
  await pictureMoves(page, { timeoutMs: 80000, what: 'the picture moves again after the relay restart' });
  console.log(`# picture back ${Date.now() - restartedAt} ms after the relay restarted`);
  assert.deepEqual(navigations, [], 'no page reload');
});

test('agent killed and restarted: the picture moves again without reload, on the desktop_connected notice', async () => {
  await pictureMoves(page);
  notices.length = 0;
  await agent.kill();
  await eventually(async () => /waiting|disconnected/.test(await page.locator('#notice').textContent()),
    { timeoutMs: 10000, what: 'the page says the desktop went away' });
  const item = page.locator('#desktops button[data-client-id="resilient-pc"]');
  await eventually(async () => /offline/.test(await item.textContent()), { what: 'listed as offline' });

  agent.start();
  const restartedAt = Date.now();
  await pictureMoves(page, { timeoutMs: 30000, what: 'the picture moves again after the agent restart' });
  console.log(`# picture back ${Date.now() - restartedAt} ms after the agent restarted`);
  assert.ok(notices.some((n) => n.desktopClientId === 'resilient-pc' && n.desktop?.clientId === 'resilient-pc'),
    `the relay sent desktop_connected (${JSON.stringify(notices)})`);
  assert.match(await item.textContent(), /online/);
});

test('the page alone loses its connection (agent still streaming): it subscribes again and the picture moves, no notice needed', async () => {
  const proxy = await new CuttableProxy(port).start();
  const p = await browser.newPage({ viewport: { width: 800, height: 600 } });
  const log = watchConsole(p);
  const seen = [];
  p.on('websocket', (ws) => ws.on('framereceived', (f) => { if (typeof f.payload === 'string') seen.push(f.payload); }));
  try {
    await p.goto(`${proxy.base}/?desktop=resilient-pc`);
    await pictureMoves(p, { what: 'the picture through the proxy moves' });
    seen.length = 0;
    proxy.cut();
    await eventually(async () => (await viewerStatus(p)).state !== 'connected', { intervalMs: 20, what: 'the page notices the drop' });
    await eventually(async () => (await viewerStatus(p)).state === 'connected', { timeoutMs: 15000, what: 'connected again' });
    await pictureMoves(p, { what: 'the picture moves again after the page reconnected' });
    assert.ok(!seen.some((m) => m.includes('"desktop_connected"')), 'no desktop registered meanwhile: the page resubscribed by itself');
    assert.ok(seen.some((m) => m.includes('"subscribed"')), 'the page subscribed again');
    log.assertNone((e) => /ERR_CONNECTION_RESET|WebSocket connection to .* failed/.test(e.text));
  } finally {
    await p.close();
    await proxy.stop();
  }
});

test('relay down for long: the breaker shows "relay unreachable, retrying in N s" and does not hammer', async () => {
  let attempts = 0;
  page.on('websocket', () => { attempts += 1; });
  relayDown();
  await relay.kill();
  const downAt = Date.now();
  const shown = await eventually(async () => {
    const s = await viewerStatus(page);
    return s.state === 'offline' ? s : null;
  }, { timeoutMs: 40000, what: 'the breaker opens' });
  assert.match(shown.text, /^relay unreachable, retrying in \d+ s$/);
  const seconds = Number(shown.text.match(/(\d+) s/)[1]);
  assert.ok(seconds >= 1 && seconds <= 20, shown.text);
  // 5 failures in a row open the breaker; backoff with jitter before: never a tight loop.
  assert.ok(attempts <= 5, `${attempts} attempts in ${Date.now() - downAt} ms`);
  assert.match(await page.locator('#desktops button[data-client-id="resilient-pc"]').textContent(), /offline/,
    'without the relay no desktop is shown online');
  assert.match(await page.locator('#notice').textContent(), /^relay unreachable, retrying in \d+ s$/);
  await screenshot(page, 'viewer-offline.png');
  await sleep(3000);
  assert.ok(attempts <= 5, `no attempt while the breaker is open (${attempts})`);
  assert.equal((await viewerStatus(page)).state, 'offline');
  await startRelay();
  relayUp();
  await page.click('#retry'); // the user need not wait for the countdown
  await eventually(async () => (await viewerStatus(page)).state === 'connected', { timeoutMs: 15000, what: 'connected after "retry now"' });
  downWindows[downWindows.length - 1][1] = Date.now();
});

test('a relay that refuses the token: "unauthorized" and no retry loop; a valid ?token= connects, and its /api requests and the dashboard carry it', async () => {
  let secureAgent;
  const securePort = await freePort();
  const secure = await new Relay(securePort, join(dir, 'secure'), ['--set', 'auth.secret=e2e-secret']).startAndWait();
  const p = await browser.newPage();
  const log = watchConsole(p);
  let attempts = 0;
  p.on('websocket', () => { attempts += 1; });
  try {
    await p.goto(`${secure.base}/`);
    await eventually(async () => (await viewerStatus(p)).state === 'offline', { what: 'offline: unauthorized' });
    assert.match((await viewerStatus(p)).text, /^unauthorized: add \?token=/);
    await sleep(3000);
    assert.equal(attempts, 1, 'a refused token is not retried');
    const mint = (role, sub) => new Promise((resolve, reject) => {
      const t = new DeskstreamProcess(`token-${role}`, ['--set', 'auth.secret=e2e-secret', 'token', '--role', role, '--sub', sub, '--ttl', '1h']).start();
      t.exited.then(({ code }) => (code === 0 ? resolve(t.log.trim()) : reject(new Error(t.log))));
    });
    const token = await mint('viewer', 'e2e-viewer');
    // A desktop on the secured relay, so /api/desktops has something to list.
    secureAgent = new Agent({ port: securePort, clientId: 'secure-pc', stateDir: join(dir, 'secure-agent'), monitors: 1, fps: 5,
      token: await mint('desktop', 'secure-pc') }).start();
    const apiRequests = [];
    p.on('response', (r) => { if (r.url().endsWith('/api/desktops')) apiRequests.push(r.status()); });
    await p.goto(`${secure.base}/?token=${encodeURIComponent(token)}`);
    await eventually(async () => (await viewerStatus(p)).state === 'connected', { what: 'connected with the token' });
    // The viewer's /api/desktops polls (every 3 s once connected) carry the token: 200, not 401.
    await eventually(async () => apiRequests.length >= 1, { what: 'the viewer polled /api/desktops', timeoutMs: 15000 });
    assert.deepEqual(apiRequests.filter((s) => s !== 200), [], 'every /api/desktops answer was 200');
    log.assertNone();

    // The dashboard opened from the viewer's link carries the token on and lists the desktop.
    const href = await p.locator('nav a').getAttribute('href');
    assert.equal(href, `dashboard?token=${encodeURIComponent(token)}`);
    const d = await browser.newPage();
    const dlog = watchConsole(d);
    try {
      await d.goto(new URL(href, `${secure.base}/`).href);
      const row = d.locator('#desktop-table tbody tr[data-client-id="secure-pc"]');
      await eventually(async () => (await row.count()) === 1, { what: 'the dashboard lists secure-pc', timeoutMs: 30000 });
      assert.equal(await d.locator('#ready').textContent(), 'relay ready');
      dlog.assertNone();
      // Without the token the relay answers 401 and the dashboard says what to do.
      await d.goto(`${secure.base}/dashboard`);
      await eventually(async () => /^cannot list desktops: unauthorized \(401\): add \?token=/.test(await d.locator('#ready').textContent()),
        { what: 'the dashboard without a token says unauthorized' });
      assert.ok(dlog.errors.some((e) => e.text.startsWith('HTTP 401') && e.url.endsWith('/api/desktops')), 'the relay refused it');
    } finally {
      await d.close();
    }
  } finally {
    await p.close();
    await secureAgent?.stop();
    await secure.stop();
  }
});

test('no console errors apart from the refused connection while the relay was down', () => consoleLog.assertNone(refusedWhileDown));
