// deskstream browser viewer: protocol v1 (docs/protocol.md).
// Handshake, subscribe, draw binary frames on canvases, acknowledge each drawn frame,
// heartbeat towards the relay with reconnect (exponential backoff, full jitter), input commands.
'use strict';

const HEADER_BYTES = 64;
const MIME = { 1: 'image/jpeg', 2: 'image/webp', 3: 'image/avif', 4: 'image/png' };
const params = new URLSearchParams(location.search);
const token = params.get('token') || '';

const ui = {
  desktop: document.getElementById('desktop'),
  monitor: document.getElementById('monitor'),
  input: document.getElementById('input-enabled'),
  status: document.getElementById('status'),
  screens: document.getElementById('screens'),
  empty: document.getElementById('empty'),
  stats: document.getElementById('stats'),
};

const state = {
  ws: null,
  attempt: 0,
  heartbeatMs: 5000,
  missedLimit: 3,
  lastPong: 0,
  pingTimer: null,
  subscribed: null,         // desktopClientId
  wanted: params.get('desktop') || '',
  monitors: [],
  canvases: new Map(),      // monitor index -> canvas
  drawing: new Map(),       // monitor index -> busy flag (latest frame wins while decoding)
  pending: new Map(),       // monitor index -> newest undrawn frame
  frames: 0, bytes: 0, lastStatsAt: performance.now(), latencies: [],
};

function setStatus(text, s) { ui.status.textContent = text; ui.status.dataset.state = s; }

function send(obj) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(obj));
}

function connect() {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/viewer';
  setStatus('connecting…', 'connecting');
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onopen = () => send({ type: 'handshake', protocol: 1, role: 'viewer', token });
  ws.onmessage = (ev) => (typeof ev.data === 'string' ? onText(ev.data) : onFrame(ev.data));
  ws.onclose = (ev) => {
    stopHeartbeat();
    state.subscribed = null;
    setStatus(`disconnected (${ev.code}${ev.reason ? ' ' + ev.reason : ''}), retrying`, 'closed');
    if (ev.code === 1008 && /unauthorized/.test(ev.reason)) { setStatus('unauthorized: add ?token=… to the URL', 'closed'); return; }
    // Exponential backoff with full jitter, capped at 30 s.
    const cap = Math.min(30000, 500 * 2 ** state.attempt++);
    setTimeout(connect, Math.random() * cap);
  };
}

function startHeartbeat() {
  stopHeartbeat();
  state.lastPong = performance.now();
  state.pingTimer = setInterval(() => {
    const silentFor = performance.now() - state.lastPong;
    if (silentFor > state.heartbeatMs * (state.missedLimit + 1)) {
      // The relay stopped answering: the socket may look open but is dead.
      state.ws.close(4008, 'heartbeat timeout');
      return;
    }
    send({ type: 'ping', timestamp: Date.now() });
  }, state.heartbeatMs);
}

function stopHeartbeat() { if (state.pingTimer) clearInterval(state.pingTimer); state.pingTimer = null; }

function onText(text) {
  let msg;
  try { msg = JSON.parse(text); } catch { console.warn('relay sent malformed JSON'); return; }
  state.lastPong = performance.now(); // any message proves the relay is alive
  switch (msg.type) {
    case 'handshake_ack':
      state.attempt = 0;
      state.heartbeatMs = msg.heartbeatIntervalMs || 5000;
      startHeartbeat();
      setStatus('connected', 'open');
      updateDesktops((msg.desktops || []).map((d) => (typeof d === 'string' ? { clientId: d } : d)));
      break;
    case 'ping': send({ type: 'pong', timestamp: msg.timestamp, serverTime: Date.now() }); break;
    case 'pong':
      if (Array.isArray(msg.availableDesktopClients)) updateDesktops(msg.availableDesktopClients.map((id) => ({ clientId: id })));
      break;
    case 'subscribed':
      state.subscribed = msg.desktopClientId;
      state.monitors = msg.monitors || [];
      buildScreens();
      break;
    case 'redirect': location.href = msg.url.replace(/^ws/, 'http').replace(/\/ws\/viewer$/, '/') + location.search; break;
    case 'error': console.warn('relay error', msg.code, msg.message); setStatus(`error: ${msg.code} ${msg.message || ''}`, 'open'); break;
    case 'command_queued': case 'command_result': break;
    default: break;
  }
}

function updateDesktops(list) {
  const current = ui.desktop.value || state.wanted;
  const ids = list.map((d) => d.clientId);
  const known = Array.from(ui.desktop.options).map((o) => o.value).filter(Boolean);
  if (ids.length === known.length && ids.every((id) => known.includes(id))) return;
  ui.desktop.innerHTML = '';
  if (ids.length === 0) ui.desktop.append(new Option('(none connected)', ''));
  for (const d of list) ui.desktop.append(new Option(d.name ? `${d.name} (${d.clientId})` : d.clientId, d.clientId));
  const pick = ids.includes(current) ? current : ids[0] || '';
  ui.desktop.value = pick;
  if (pick && pick !== state.subscribed) subscribe(pick);
  if (!pick) { state.subscribed = null; buildScreens(); }
}

function subscribe(id) {
  if (state.subscribed && state.subscribed !== id) send({ type: 'unsubscribe', desktopClientId: state.subscribed });
  const msg = { type: 'subscribe', desktopClientId: id };
  if (ui.monitor.value !== '') msg.monitor = Number(ui.monitor.value);
  send(msg);
}

function buildScreens() {
  ui.screens.innerHTML = '';
  state.canvases.clear();
  ui.empty.hidden = !!state.subscribed;
  const prev = ui.monitor.value;
  ui.monitor.innerHTML = '';
  ui.monitor.append(new Option('all', ''));
  for (const m of state.monitors) ui.monitor.append(new Option(`${m.index}: ${m.name || ''} ${m.width}x${m.height}`, String(m.index)));
  ui.monitor.value = prev;
}

function canvasFor(monitor, width, height) {
  let c = state.canvases.get(monitor);
  if (!c) {
    c = document.createElement('canvas');
    c.tabIndex = 0;
    c.dataset.monitor = String(monitor);
    attachInput(c, monitor);
    ui.screens.append(c);
    state.canvases.set(monitor, c);
  }
  if (c.width !== width || c.height !== height) { c.width = width; c.height = height; }
  return c;
}

function parseHeader(buf) {
  if (buf.byteLength < HEADER_BYTES) return null;
  const v = new DataView(buf);
  if (v.getUint32(0, false) !== 0x44534631) return null; // "DSF1"
  const headerLength = v.getUint16(4, true);
  const payloadLength = v.getUint32(56, true);
  if (headerLength < HEADER_BYTES || headerLength + payloadLength !== buf.byteLength) return null;
  return {
    headerLength, codec: v.getUint8(6), flags: v.getUint8(7),
    frameNumber: Number(v.getBigUint64(8, true)), captureTimeUs: Number(v.getBigUint64(16, true)),
    monitor: v.getUint16(28, true), quality: v.getUint8(30),
    screenWidth: v.getUint32(32, true), screenHeight: v.getUint32(36, true),
    x: v.getUint32(40, true), y: v.getUint32(44, true), width: v.getUint32(48, true), height: v.getUint32(52, true),
    payloadLength,
  };
}

function onFrame(buf) {
  const h = parseHeader(buf);
  if (!h) { console.warn('malformed frame header'); return; }
  state.frames++; state.bytes += buf.byteLength;
  const f = { h, payload: new Uint8Array(buf, h.headerLength, h.payloadLength), receivedAt: performance.now() };
  if (state.drawing.get(h.monitor)) {
    // Still decoding the previous picture: keep only the newest, acknowledge the skipped one
    // so the agent's window does not fill up because of this tab.
    const old = state.pending.get(h.monitor);
    if (old) ack(old, 0);
    state.pending.set(h.monitor, f);
    return;
  }
  draw(f);
}

async function draw(f) {
  const { h } = f;
  state.drawing.set(h.monitor, true);
  try {
    const c = canvasFor(h.monitor, h.screenWidth, h.screenHeight);
    const ctx = c.getContext('2d');
    if (h.codec === 5) {
      const img = new ImageData(h.width, h.height);
      const p = f.payload;
      for (let i = 0; i < img.data.length; i += 4) { img.data[i] = p[i + 2]; img.data[i + 1] = p[i + 1]; img.data[i + 2] = p[i]; img.data[i + 3] = 255; }
      ctx.putImageData(img, h.x, h.y);
    } else {
      const bmp = await createImageBitmap(new Blob([f.payload], { type: MIME[h.codec] || 'application/octet-stream' }));
      ctx.drawImage(bmp, h.x, h.y, h.width || bmp.width, h.height || bmp.height);
      bmp.close();
    }
    ack(f, performance.now() - f.receivedAt);
  } catch (e) {
    console.warn('cannot draw frame', h.frameNumber, e);
    ack(f, performance.now() - f.receivedAt);
  } finally {
    state.drawing.set(h.monitor, false);
    const next = state.pending.get(h.monitor);
    if (next) { state.pending.delete(h.monitor); draw(next); }
  }
}

function ack(f, latency) {
  const l = Math.round(latency);
  state.latencies.push(l);
  send({ type: 'frame_ack', desktopClientId: state.subscribed, frameNumber: f.h.frameNumber, monitor: f.h.monitor, latency: l });
}

function command(cmd) {
  if (!state.subscribed) return;
  send({ type: 'command', desktopClientId: state.subscribed, command: cmd });
}

function attachInput(canvas, monitor) {
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return { x: Math.round((e.clientX - r.left) * canvas.width / r.width), y: Math.round((e.clientY - r.top) * canvas.height / r.height) };
  };
  let lastMove = 0;
  canvas.addEventListener('mousemove', (e) => {
    if (!ui.input.checked || performance.now() - lastMove < 33) return; // at most ~30 moves/s
    lastMove = performance.now();
    command({ type: 'input', event: 'mouse_move', monitor, ...pos(e) });
  });
  canvas.addEventListener('mousedown', (e) => { if (ui.input.checked) { canvas.focus(); command({ type: 'input', event: 'mouse_down', monitor, button: e.button, ...pos(e) }); } });
  canvas.addEventListener('mouseup', (e) => { if (ui.input.checked) command({ type: 'input', event: 'mouse_up', monitor, button: e.button, ...pos(e) }); });
  canvas.addEventListener('wheel', (e) => { if (ui.input.checked) { e.preventDefault(); command({ type: 'input', event: 'wheel', monitor, deltaX: Math.sign(e.deltaX), deltaY: Math.sign(e.deltaY), ...pos(e) }); } }, { passive: false });
  canvas.addEventListener('keydown', (e) => { if (ui.input.checked) { e.preventDefault(); command({ type: 'input', event: 'key_down', monitor, key: e.key }); } });
  canvas.addEventListener('keyup', (e) => { if (ui.input.checked) { e.preventDefault(); command({ type: 'input', event: 'key_up', monitor, key: e.key }); } });
  canvas.addEventListener('contextmenu', (e) => { if (ui.input.checked) e.preventDefault(); });
}

ui.desktop.addEventListener('change', () => { state.wanted = ui.desktop.value; if (ui.desktop.value) subscribe(ui.desktop.value); });
ui.monitor.addEventListener('change', () => { if (state.subscribed) subscribe(state.subscribed); });

setInterval(() => {
  const now = performance.now();
  const secs = (now - state.lastStatsAt) / 1000;
  const lat = state.latencies.sort((a, b) => a - b);
  const p50 = lat.length ? lat[Math.floor(lat.length / 2)] : 0;
  ui.stats.textContent = `${(state.frames / secs).toFixed(1)} fps  ${(state.bytes / secs / 1024).toFixed(0)} KiB/s  draw p50 ${p50} ms`;
  window.deskstreamStats = { fps: state.frames / secs, p50, subscribed: state.subscribed };
  state.frames = 0; state.bytes = 0; state.latencies = []; state.lastStatsAt = now;
}, 1000);

connect();
