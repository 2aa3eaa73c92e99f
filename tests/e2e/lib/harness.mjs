// Shared parts of the browser end-to-end tests (docs/viewer.md, "Tests"): the real deskstream
// binary as relay and agent processes on a free loopback port, Debian's Chromium driven by
// playwright-core, console-error collection, polling helpers and screenshots.
//
// Environment (set by tests/e2e/CMakeLists.txt): DS_EXE (the deskstream binary), DS_PLUGIN_DIR,
// DS_WEB_ROOT, DS_E2E_OUT (a scratch folder in the build tree), optional DS_CHROMIUM
// (default /usr/bin/chromium) and DESKSTREAM_UPDATE_SCREENSHOTS=1 (also copy screenshots to
// docs/images). A missing binary, browser or package is a failure with the reason, never a skip.
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { existsSync, mkdirSync, readFileSync, copyFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  throw new Error(`playwright-core is not installed in tests/e2e/node_modules (${e.message}); ` +
    'run scripts/bootstrap.sh or: bash scripts/lib/e2e.sh install');
}

export const env = {
  exe: need('DS_EXE'),
  pluginDir: need('DS_PLUGIN_DIR'),
  webRoot: need('DS_WEB_ROOT'),
  out: need('DS_E2E_OUT'),
  chromium: process.env.DS_CHROMIUM || '/usr/bin/chromium',
  docsImages: join(here, '..', '..', '..', 'docs', 'images'),
};
for (const [what, path] of [['DS_EXE', env.exe], ['DS_CHROMIUM', env.chromium], ['DS_WEB_ROOT', env.webRoot]])
  if (!existsSync(path)) throw new Error(`${what}: ${path} does not exist (build the deskstream target; apt-get install chromium)`);

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the e2e tests through ctest (label e2e)`);
  return v;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now (loopback). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Polls `fn` (sync or async) until it returns a truthy value; throws `what` after timeoutMs. */
export async function eventually(fn, { timeoutMs = 15000, intervalMs = 100, what = 'condition' } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() - start > timeoutMs)
      throw new Error(`${what}: not true within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    await sleep(intervalMs);
  }
}

/** One deskstream process (relay or agent) with its output in files under DS_E2E_OUT. */
export class DeskstreamProcess {
  constructor(name, args) {
    this.name = name;
    this.args = args;
    this.child = null;
  }

  start() {
    mkdirSync(env.out, { recursive: true });
    this.logPath = join(env.out, `${this.name}.log`);
    this.child = spawn(env.exe, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.log = '';
    const keep = (chunk) => { this.log += chunk.toString(); };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    return this;
  }

  signal(sig) { if (this.child && this.child.exitCode === null) this.child.kill(sig); }

  async kill() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const done = await Promise.race([this.exited, sleep(10000).then(() => null)]);
    if (!done) await this.kill();
  }
}

/**
 * A loopback TCP proxy in front of the relay for the page only, so a test can cut the page's
 * connections (as a network drop would) while the agent stays connected to the relay directly.
 */
export class CuttableProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.sockets = new Set();
  }

  async start() {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {}); // the other side is destroyed with it
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    this.base = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** Drops every open connection at once (a TCP reset for the page); new ones are accepted. */
  cut() { for (const s of this.sockets) s.destroy(); }

  async stop() {
    this.cut();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/** The relay: SQLite store in its own state folder, 1 s heartbeats (bound 4 s), web pages. */
export class Relay extends DeskstreamProcess {
  constructor(port, stateDir, extra = []) {
    super(`relay-${port}`, ['--role', 'relay',
      '--set', `relay.listen=127.0.0.1:${port}`,
      '--set', `relay.public_url=http://127.0.0.1:${port}`,
      '--set', `host.state_dir=${stateDir}`,
      '--set', `host.plugins.path=${env.pluginDir}`,
      '--set', 'relay.store=sqlite',
      '--set', `relay.web_root=${env.webRoot}`,
      '--set', 'heartbeat.interval_ms=1000',
      ...extra]);
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
  }

  async startAndWait() {
    this.start();
    await eventually(async () => {
      if (this.child.exitCode !== null) throw new Error(`relay exited: ${this.log}`);
      const r = await fetch(`${this.base}/healthz`);
      return r.ok;
    }, { timeoutMs: 30000, what: `relay on ${this.base} answers /healthz` });
    return this;
  }

  async json(path) {
    const r = await fetch(`${this.base}${path}`);
    assert.equal(r.status, 200, `GET ${path}`);
    return r.json();
  }

  /**
   * The relay's counter `name` from /metrics: a family of its own (deskstream_relay_<name>_total)
   * or one kind of deskstream_relay_events_total{event="<name>"} (docs/operations.md).
   */
  async counter(name) {
    const text = await (await fetch(`${this.base}/metrics`)).text();
    const m = text.match(new RegExp(`^deskstream_relay_${name}_total(?:\\{[^}]*\\})? (\\d+)`, 'm')) ||
      text.match(new RegExp(`^deskstream_relay_events_total\\{event="${name}"\\} (\\d+)`, 'm'));
    if (!m) throw new Error(`counter ${name} not in /metrics`);
    return Number(m[1]);
  }
}

/** An agent with synthetic capture (JPEG), recording the input it receives in `inputLog`. */
export class Agent extends DeskstreamProcess {
  constructor({ port, clientId, name = '', stateDir, inputLog = '', monitors = 2, width = 640, height = 400, fps = 10, token = '' }) {
    super(`agent-${clientId}`, ['--role', 'agent',
      '--set', `agent.relay_url=ws://127.0.0.1:${port}/ws/agent`,
      '--set', `agent.client_id=${clientId}`,
      ...(name ? ['--set', `agent.name=${name}`] : []),
      '--set', `host.state_dir=${stateDir}`,
      '--set', `host.plugins.path=${env.pluginDir}`,
      '--set', 'agent.capture=synthetic',
      '--set', `capture.synthetic.width=${width}`,
      '--set', `capture.synthetic.height=${height}`,
      '--set', `capture.synthetic.monitors=${monitors}`,
      ...(inputLog ? ['--set', `capture.synthetic.input_log=${inputLog}`] : []),
      '--set', 'agent.encoder=jpeg',
      '--set', `agent.fps=${fps}`,
      ...(token ? ['--set', `agent.token=${token}`] : [])]);
    this.clientId = clientId;
    this.inputLog = inputLog;
  }

  /** The input events the synthetic plugin recorded, parsed. */
  inputs() {
    if (!this.inputLog || !existsSync(this.inputLog)) return [];
    return readFileSync(this.inputLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
}

/** A scratch folder for one test file, emptied first. */
export function scratch(name) {
  const dir = join(env.out, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Debian's Chromium, headless. */
export async function launchBrowser() {
  return chromium.launch({ executablePath: env.chromium, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

/**
 * Console errors and uncaught page errors of `page`, with the time they happened. Tests assert
 * that none happened, except those an `allow(entry)` predicate accepts (the refused connection
 * while the relay is down).
 */
export function watchConsole(page) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push({ at: Date.now(), text: m.text(), url: m.location().url }); });
  page.on('pageerror', (e) => errors.push({ at: Date.now(), text: `uncaught: ${e.message}` }));
  page.on('requestfailed', (r) => errors.push({ at: Date.now(), text: `request failed: ${r.url()} ${r.failure()?.errorText}`, url: r.url() }));
  page.on('response', (r) => { if (r.status() >= 400) errors.push({ at: Date.now(), text: `HTTP ${r.status()} ${r.url()}`, url: r.url() }); });
  return {
    errors,
    assertNone(allow = () => false) {
      const bad = errors.filter((e) => !allow(e));
      assert.deepEqual(bad, [], `console errors: ${JSON.stringify(bad, null, 1)}`);
    },
  };
}

/** Saves a screenshot under DS_E2E_OUT/screenshots, and to docs/images when asked to. */
export async function screenshot(page, file, options = {}) {
  const dir = join(env.out, 'screenshots');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  await page.screenshot({ path, ...options });
  if (process.env.DESKSTREAM_UPDATE_SCREENSHOTS === '1') {
    mkdirSync(env.docsImages, { recursive: true });
    copyFileSync(path, join(env.docsImages, file));
  }
  return path;
}

/** Pixel fingerprint of every canvas of the page: [{monitor, w, h, sum, distinct}] (reads the bitmap). */
export async function canvasFingerprints(page) {
  return page.evaluate(() => [...document.querySelectorAll('#screens canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4 * 97) { sum = (sum * 31 + d[i] + d[i + 1] * 3 + d[i + 2] * 7) >>> 0; colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); }
    return { monitor: Number(c.dataset.monitor), w: c.width, h: c.height, sum, distinct: colours.size };
  }));
}

/** Resolves when the picture on the page changes twice (moving, not one stale redraw). */
export async function pictureMoves(page, { timeoutMs = 15000, what = 'the picture moves' } = {}) {
  const first = await eventually(async () => {
    const f = await canvasFingerprints(page);
    return f.length && f.every((c) => c.distinct > 8) ? f : null;
  }, { timeoutMs, what: `${what}: a canvas that is not blank` });
  let seen = first[0].sum;
  let changes = 0;
  await eventually(async () => {
    const f = await canvasFingerprints(page);
    if (f.length && f[0].sum !== seen) { seen = f[0].sum; changes += 1; }
    return changes >= 2;
  }, { timeoutMs, what });
}

/** The viewer's status line {state, text}. */
export async function viewerStatus(page) {
  return page.evaluate(() => {
    const s = document.getElementById('status');
    return { state: s.dataset.state, text: s.textContent };
  });
}
