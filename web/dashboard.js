// The dashboard: every desktop of GET /api/desktops with its stream figures and a chart of the
// last minutes, the relay's instance id and uptime (GET /readyz), refreshed every 2 s.
// Desktops that leave stay listed as offline. Agent-supplied text goes in with textContent only.

const REFRESH_MS = 2000;
// With [auth] secret set the relay's /api needs `Authorization: Bearer <viewer token>`
// (docs/relay.md); the page takes the token from ?token=, as the viewer page does.
const token = new URLSearchParams(window.location.search).get('token') || '';
const apiHeaders = token ? { Authorization: `Bearer ${token}` } : {};
const HISTORY_MS = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);
const history = new Map(); // clientId -> {last: desktop row, points: [{t, fps, lat}], online, seenAt}

const fmt = (v, digits = 0) => (v === undefined || v === null ? '–' : Number(v).toFixed(digits));

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

function cell(text, className) {
  const td = document.createElement('td');
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function chart(points) {
  const canvas = document.createElement('canvas');
  const dpr = window.devicePixelRatio || 1;
  canvas.width = 160 * dpr;
  canvas.height = 36 * dpr;
  const ctx = canvas.getContext('2d');
  ctx.scale(dpr, dpr);
  const now = Date.now();
  // The time axis covers what this page has seen: at least 1 minute, at most HISTORY_MS.
  const span = Math.min(HISTORY_MS, Math.max(60000, points.length ? now - points[0].t : 0));
  ctx.fillStyle = 'rgba(255, 255, 255, 0.05)';
  ctx.fillRect(0, 0, 160, 36);
  const line = (key, color) => {
    const values = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
    const max = Math.max(1, ...values);
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      if (p[key] === null || p[key] === undefined) { started = false; continue; }
      const x = 160 - ((now - p.t) / span) * 160;
      const y = 34 - (p[key] / max) * 30;
      if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      started = true;
    }
    ctx.stroke();
    const lastPoint = points[points.length - 1];
    if (lastPoint && lastPoint[key] !== null && lastPoint[key] !== undefined) { // the newest value as a dot
      ctx.fillStyle = color;
      ctx.fillRect(157, 34 - (lastPoint[key] / max) * 30 - 1.5, 3, 3);
    }
  };
  line('fps', '#6fcf6f');
  line('lat', '#f0a040');
  const last = points[points.length - 1];
  canvas.title = last ? `last ${duration(span)}: fps ${fmt(last.fps, 1)}, latency p50 ${fmt(last.lat)} ms` : '';
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `chart of the last minutes: ${canvas.title}`);
  return canvas;
}

function remember(desktops, now) {
  const listed = new Set();
  for (const d of desktops) {
    if (!d || typeof d.clientId !== 'string') continue;
    listed.add(d.clientId);
    const h = history.get(d.clientId) || { points: [] };
    const s = d.stats || {};
    h.last = d;
    h.online = true;
    h.seenAt = now;
    h.points.push({ t: now, fps: s.fpsOut ?? null, lat: s.latencyP50Ms ?? null });
    history.set(d.clientId, h);
  }
  for (const [id, h] of history) {
    if (!listed.has(id)) { h.online = false; h.points.push({ t: now, fps: null, lat: null }); }
    while (h.points.length && h.points[0].t < now - HISTORY_MS) h.points.shift();
  }
}

function render(now) {
  const dt = $('desktop-table').querySelector('tbody');
  const vt = $('viewer-table').querySelector('tbody');
  dt.replaceChildren();
  vt.replaceChildren();
  const rows = [...history.values()].sort((a, b) => (b.online - a.online) || a.last.clientId.localeCompare(b.last.clientId));
  for (const h of rows) {
    const d = h.last;
    const s = (h.online && d.stats) || {};
    const tr = document.createElement('tr');
    tr.dataset.clientId = d.clientId;
    tr.className = h.online ? 'online' : 'offline';
    const name = d.name && d.name !== d.clientId ? `${d.name} (${d.clientId})` : d.clientId;
    const age = h.online ? (d.lastPing ? `${duration(now - d.lastPing)} ago` : '–') : `offline for ${duration(now - h.seenAt)}`;
    tr.append(
      cell(name),
      cell(h.online ? 'online' : 'offline', h.online ? 'state-online' : 'state-offline'),
      cell(h.online ? String(d.viewers ?? 0) : '–'),
      cell(`${fmt(s.fpsIn)} / ${fmt(s.fpsOut)}`),
      cell(`${fmt(s.latencyP50Ms)} / ${fmt(s.latencyP95Ms)} ms`),
      cell(fmt(s.quality)),
      cell(`${fmt(s.dropsLagging)} / ${fmt(s.dropsWindow)}`),
    );
    const chartCell = document.createElement('td');
    chartCell.append(chart(h.points));
    tr.append(chartCell, cell((d.instanceId || '').slice(0, 8)), cell(age));
    dt.append(tr);
    if (!h.online) continue;
    for (const v of d.viewerStats || []) {
      const vr = document.createElement('tr');
      vr.append(cell(String(v.viewerId)), cell(d.clientId), cell(fmt(v.fpsOut)),
        cell(`${fmt(v.latencyP50Ms)} / ${fmt(v.latencyP95Ms)} ms`), cell(fmt(v.delivered)), cell(fmt(v.dropsLagging)),
        cell(fmt(v.queued)), cell(v.lagging ? 'lagging' : 'healthy', v.lagging ? 'state-offline' : 'state-online'));
      vt.append(vr);
    }
  }
  if (!rows.length) {
    const tr = document.createElement('tr');
    const td = cell('no desktop registered yet');
    td.colSpan = 10;
    tr.append(td);
    dt.append(tr);
  }
  $('online-count').textContent = String(rows.filter((h) => h.online).length);
  $('updated').textContent = new Date(now).toLocaleTimeString();
}

async function refresh() {
  const ready = $('ready');
  const now = Date.now();
  try {
    const r = await fetch('readyz', { cache: 'no-store' });
    const body = await r.json();
    ready.textContent = r.ok ? 'relay ready' : `relay not ready: ${body.reason || r.status}`;
    ready.dataset.state = r.ok ? 'ready' : 'offline';
    if (body.instanceId) $('instance').textContent = body.instanceId;
    if (Number.isFinite(body.startedAt) && Number.isFinite(body.serverTime))
      $('uptime').textContent = duration(body.serverTime - body.startedAt);
  } catch {
    ready.textContent = `relay unreachable, retrying in ${REFRESH_MS / 1000} s`;
    ready.dataset.state = 'offline';
    $('uptime').textContent = '–';
    remember([], now); // every desktop is shown as offline (unknown) until the relay answers
    render(now);
    return;
  }
  try {
    const r = await fetch('api/desktops', { cache: 'no-store', headers: apiHeaders });
    if (r.status === 401) throw new Error(token ? 'the token was refused (401)' : 'unauthorized (401): add ?token=… to the URL');
    if (!r.ok) throw new Error(`GET /api/desktops: ${r.status}`);
    const { desktops = [] } = await r.json();
    remember(desktops, now);
    render(now);
  } catch (e) {
    ready.textContent = `cannot list desktops: ${e.message}`;
    ready.dataset.state = 'offline';
  }
}

async function loop() {
  await refresh();
  setTimeout(loop, REFRESH_MS); // one request at a time, even when the relay is slow
}
loop();
