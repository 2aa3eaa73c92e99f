// The viewer page: wires the relay connection (js/relay-client.js), the display
// (js/display.js) and the input controller (js/input.js) to the controls, the status line and
// the overlay. The choice of desktop, monitor and scale is kept in the URL. Everything that
// comes from agents or the relay is shown with textContent, never parsed as HTML.
import { RelayClient } from './js/relay-client.js';
import { Display } from './js/display.js';
import { InputController } from './js/input.js';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), retry: $('retry'), desktops: $('desktops'), noDesktops: $('no-desktops'),
  monitor: $('monitor'), scaleFit: $('scale-fit'), scale1: $('scale-1'), fullscreen: $('fullscreen'),
  control: $('control'), viewport: $('viewport'), screens: $('screens'), overlay: $('overlay'), notice: $('notice'),
};

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
// The dashboard's /api requests need the token too (docs/viewer.md): its link carries it on.
if (token) document.querySelector('nav a[href="dashboard"]')?.setAttribute('href', `dashboard?token=${encodeURIComponent(token)}`);
const choice = {
  desktop: params.get('desktop') || '',
  monitor: /^\d+$/.test(params.get('monitor') || '') ? Number(params.get('monitor')) : null,
  scale: params.get('scale') === '1:1' ? '1:1' : 'fit',
};

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function keepChoiceInUrl() {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of [['desktop', choice.desktop], ['monitor', choice.monitor === null ? '' : String(choice.monitor)],
    ['scale', choice.scale === 'fit' ? '' : choice.scale]]) {
    if (v) p.set(k, v); else p.delete(k);
  }
  const q = p.toString();
  history.replaceState(null, '', q ? `?${q}` : location.pathname);
}

// ---------------------------------------------------------------- figures for the overlay
const figures = {
  drawn: [],            // [time, drawLatencyMs] of the last 2 s
  quality: null,
  viewerDrops: 0,       // latest-wins skips in this page
  relayDrops: 0,        // this viewer's frames the relay dropped (lagging)
  agentDrops: 0,        // frames the agent dropped (window full)
  ackLatencyMs: null,   // the agent's last acknowledged latency (send -> ack)
  lastFrameAt: 0,
};

function renderOverlay() {
  const now = performance.now();
  while (figures.drawn.length && figures.drawn[0][0] < now - 2000) figures.drawn.shift();
  if (!client.watching) { ui.overlay.textContent = ''; return; }
  const fps = figures.drawn.length / 2 / Math.max(1, display.canvases().length); // per monitor
  const draws = figures.drawn.map((d) => d[1]).sort((a, b) => a - b);
  const drawP50 = draws.length ? Math.round(draws[Math.floor(draws.length / 2)]) : null;
  const fmt = (v, unit = '') => (v === null || v === undefined ? '–' : `${v}${unit}`);
  const drops = figures.viewerDrops + figures.relayDrops;
  ui.overlay.textContent = [
    `fps          ${fps.toFixed(1)}`,
    `ack latency  ${fmt(figures.ackLatencyMs, ' ms')}`,
    `draw         ${fmt(drawP50, ' ms')}`,
    `quality      ${fmt(figures.quality)}`,
    `drops        ${drops}`,
    `  viewer ${figures.viewerDrops} · relay ${figures.relayDrops} · agent ${figures.agentDrops}`,
  ].join('\n');
  Object.assign(ui.overlay.dataset, { fps: fps.toFixed(1), quality: String(figures.quality ?? ''), drops: String(drops) });
}

// ---------------------------------------------------------------- parts
const wsUrl = new URL('ws/viewer', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
wsUrl.search = '';
const client = new RelayClient({ url: wsUrl.href, token });

let lastKeyframeRequest = 0;
const display = new Display(ui.screens, {
  onDrawn(header, latencyMs) {
    client.ack(header, latencyMs);
    figures.drawn.push([performance.now(), latencyMs]);
    figures.quality = header.quality;
    figures.lastFrameAt = performance.now();
  },
  onDropped(n) { figures.viewerDrops += n; },
  onNeedKeyframe() {
    if (performance.now() - lastKeyframeRequest < 2000) return;
    lastKeyframeRequest = performance.now();
    client.command({ type: 'request_keyframe' });
  },
});

const tokenRights = rightsOf(token);
if (tokenRights && !tokenRights.includes('control')) {
  ui.control.disabled = true;
  ui.control.parentElement.title = 'your token does not allow control';
}
let controlOn = false;
new InputController(ui.screens, display, (cmd) => client.command(cmd), () => controlOn);

/** The `rights` claim of a JWT (not verified here: the relay decides); null when absent. */
function rightsOf(jwt) {
  try {
    const part = jwt.split('.')[1];
    if (!part) return null;
    const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
    return Array.isArray(claims.rights) ? claims.rights.map(String) : typeof claims.rights === 'string' ? claims.rights.split(',') : null;
  } catch { return null; }
}

function setControl(on) {
  controlOn = on && !ui.control.disabled;
  ui.control.checked = controlOn;
  ui.viewport.dataset.control = controlOn ? 'on' : 'off';
  if (controlOn) ui.screens.focus({ preventScroll: true });
}

function showNotice(text) {
  ui.notice.textContent = text || '';
  ui.notice.hidden = !text;
}

// ---------------------------------------------------------------- status line
let countdown = 0;
function renderState({ state, retryAt, reason }) {
  clearInterval(countdown);
  ui.status.dataset.state = state;
  ui.retry.hidden = state !== 'offline';
  const text = {
    connecting: () => 'connecting…',
    connected: () => 'connected',
    reconnecting: () => 'reconnecting…',
    offline: () => (retryAt ? `relay unreachable, retrying in ${Math.max(0, Math.ceil((retryAt - Date.now()) / 1000))} s` : reason),
  }[state];
  const notice = () => { if (client.watching) showNotice(state === 'offline' ? ui.status.textContent : 'reconnecting to the relay…'); };
  ui.status.textContent = text();
  ui.status.title = reason || '';
  if (state === 'offline' && retryAt) countdown = setInterval(() => { ui.status.textContent = text(); notice(); }, 250);
  if (state !== 'connected') notice();
}

// ---------------------------------------------------------------- desktop list
function renderDesktops(desktops) {
  ui.desktops.replaceChildren();
  const sorted = [...desktops].sort((a, b) => (b.online - a.online) || a.clientId.localeCompare(b.clientId));
  for (const d of sorted) {
    const li = el('li');
    const b = el('button');
    b.type = 'button';
    b.dataset.clientId = d.clientId;
    b.setAttribute('aria-current', String(d.clientId === choice.desktop));
    b.append(el('span', 'name', d.name || d.clientId));
    const meta = el('span', 'meta');
    meta.append(el('span', d.online ? 'online' : 'offline', d.online ? '● online' : '○ offline'),
      document.createTextNode(` · ${d.monitors.length} monitor${d.monitors.length === 1 ? '' : 's'} · ${d.viewers} viewer${d.viewers === 1 ? '' : 's'}`));
    b.append(meta);
    if (d.name && d.name !== d.clientId) b.append(el('span', 'meta', d.clientId));
    b.addEventListener('click', () => choose(d.clientId));
    li.append(b);
    ui.desktops.append(li);
  }
  ui.noDesktops.hidden = desktops.length > 0;
  // Nothing chosen yet (no ?desktop=): take the first online desktop.
  if (!choice.desktop) {
    const first = sorted.find((d) => d.online);
    if (first) choose(first.clientId);
  }
}

function choose(clientId) {
  if (clientId === choice.desktop && client.watching) return;
  const changed = clientId !== choice.desktop;
  choice.desktop = clientId;
  if (changed) choice.monitor = null;
  keepChoiceInUrl();
  setControl(false);
  shownKey = '';
  display.reset();
  Object.assign(figures, { drawn: [], quality: null, viewerDrops: 0, relayDrops: 0, agentDrops: 0, ackLatencyMs: null });
  showNotice(`connecting to ${clientId}…`);
  client.watch(clientId, choice.monitor);
  for (const b of ui.desktops.querySelectorAll('button')) b.setAttribute('aria-current', String(b.dataset.clientId === clientId));
}

// ---------------------------------------------------------------- monitors
let shownKey = '';
function showMonitors(monitors) {
  const prev = ui.monitor.value;
  ui.monitor.replaceChildren(new Option('all, side by side', 'all'));
  for (const m of monitors)
    ui.monitor.append(new Option(`${m.index}: ${m.name || 'monitor'} ${m.width}×${m.height}`, String(m.index)));
  ui.monitor.value = choice.monitor === null ? 'all' : String(choice.monitor);
  if (ui.monitor.value === '') ui.monitor.value = prev || 'all';
  const shown = choice.monitor === null ? monitors : monitors.filter((m) => m.index === choice.monitor);
  const key = JSON.stringify(shown.map((m) => [m.index, m.width, m.height]));
  if (key !== shownKey) { shownKey = key; display.setMonitors(shown); } // same monitors: keep the last picture
}

// ---------------------------------------------------------------- wiring
client.addEventListener('state', (e) => renderState(e.detail));
client.addEventListener('desktops', (e) => renderDesktops(e.detail.desktops));
client.addEventListener('subscribed', (e) => {
  showMonitors(e.detail.monitors);
  showNotice('');
  pollApi(); // the viewer count changed
});
client.addEventListener('waiting', (e) => {
  if (client.state === 'connected') showNotice(`${e.detail.desktopClientId}: ${e.detail.reason}`);
});
client.addEventListener('frame', (e) => display.push(e.detail));
client.addEventListener('command', (e) => {
  const m = e.detail.message;
  if (m.type === 'command_result' && m.status === 'failed') showNotice(`command failed: ${m.error || 'no reason given'}`);
});
client.addEventListener('relayerror', (e) => {
  const { code, message } = e.detail;
  if (code === 'forbidden' || code === 'unauthorized') { setControl(false); showNotice(`control refused: ${message || code}`); }
  else if (code !== 'not_found') showNotice(`relay: ${code}${message ? ` — ${message}` : ''}`);
});
client.addEventListener('redirect', (e) => {
  // The desktop is held by another relay instance: open the same view there.
  const target = new URL(e.detail.url);
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') return;
  target.protocol = target.protocol === 'wss:' ? 'https:' : 'http:';
  target.pathname = target.pathname.replace(/ws\/viewer$/, '');
  target.search = location.search;
  location.assign(target.href);
});

ui.retry.addEventListener('click', () => client.retryNow());
window.addEventListener('online', () => client.retryNow()); // the network is back: no need to wait
ui.monitor.addEventListener('change', () => {
  choice.monitor = ui.monitor.value === 'all' ? null : Number(ui.monitor.value);
  keepChoiceInUrl();
  if (choice.desktop) client.watch(choice.desktop, choice.monitor);
});
function setScale(mode) {
  choice.scale = mode;
  ui.scaleFit.setAttribute('aria-pressed', String(mode === 'fit'));
  ui.scale1.setAttribute('aria-pressed', String(mode === '1:1'));
  display.setScaleMode(mode);
  keepChoiceInUrl();
}
ui.scaleFit.addEventListener('click', () => setScale('fit'));
ui.scale1.addEventListener('click', () => setScale('1:1'));
ui.fullscreen.addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else ui.viewport.requestFullscreen().catch((err) => showNotice(`full screen refused: ${err.message}`));
});
document.addEventListener('fullscreenchange', () => display.layout());
ui.control.addEventListener('change', () => setControl(ui.control.checked));

// Viewer counts, monitors and stream figures of every relay instance (GET /api/desktops).
async function pollApi() {
  if (client.state !== 'connected') return;
  try {
    const r = await fetch('api/desktops', { cache: 'no-store', headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!r.ok) return;
    const { desktops = [] } = await r.json();
    client.mergeApiDesktops(desktops);
    const d = desktops.find((x) => x.clientId === choice.desktop);
    const s = (d && d.stats) || {};
    figures.ackLatencyMs = s.ackLatencyMs ?? null;
    figures.agentDrops = s.dropsWindow ?? 0;
    const mine = ((d && d.viewerStats) || []).find((v) => v.viewerId === client.viewerId);
    figures.relayDrops = mine ? mine.dropsLagging || 0 : figures.relayDrops;
  } catch { /* the relay went away between the state check and the request: the socket says so */ }
}

setScale(choice.scale);
if (choice.desktop) choose(choice.desktop);
client.start();
setInterval(renderOverlay, 500);
setInterval(pollApi, 3000);
client.addEventListener('state', (e) => { if (e.detail.state === 'connected') pollApi(); });
window.deskstreamViewer = { client, display }; // for tests and the curious: read-only use
