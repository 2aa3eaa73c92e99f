// The viewer's connection to the relay (protocol v1, docs/protocol.md): handshake, heartbeat,
// reconnection behind a circuit breaker, the desktop list, and the one subscription the user
// wants, restored after every reconnect and whenever the desktop comes back. No DOM and no
// canvas: events out, method calls in (the page and the display wire themselves to it).
//
// Events (CustomEvent, details in brackets):
//   state      {state: 'connecting'|'connected'|'reconnecting'|'offline', retryAt, reason}
//   desktops   {desktops: [{clientId, name, hostname, monitors, viewers, online}]}
//   subscribed {desktopClientId, monitors}
//   waiting    {desktopClientId, reason}   the watched desktop is not streaming (yet)
//   frame      {header, payload}            a frame of the watched desktop
//   command    {message}                    command_queued / command_result
//   relayerror {code, message}              an `error` message from the relay
//   redirect   {url}                        the desktop is held by another relay instance
import { parseFrame } from './frame.js';
import { RetryPolicy } from './retry.js';

const MISSED_LIMIT = 3; // docs/protocol.md: the relay's default missedPongLimit

export class RelayClient extends EventTarget {
  constructor({ url, token = '', connectTimeoutMs = 8000, retry = new RetryPolicy() } = {}) {
    super();
    this.url = url;
    this.token = token;
    this.connectTimeoutMs = connectTimeoutMs;
    this.retry = retry;
    this.state = 'connecting';
    this.viewerId = '';
    this.desktops = new Map();     // clientId -> {clientId, name, hostname, monitors, viewers, online}
    this.watching = null;          // {desktopClientId, monitor (number | null)}
    this.subscribed = false;       // the relay confirmed `watching`
    this.ws = null;
    this.heartbeatMs = 5000;
    this.lastLife = 0;
    this.everConnected = false;
    this.stopped = false;
    this.timers = { retry: 0, connect: 0, ping: 0, check: 0 };
    this.retryAt = 0;
  }

  start() { this.stopped = false; this.open(); }

  stop() {
    this.stopped = true;
    this.clearTimers();
    this.drop(1000, 'page closed');
  }

  /** Try at once instead of waiting for the breaker or the backoff. */
  retryNow() {
    if (this.ws || this.stopped) return;
    clearTimeout(this.timers.retry);
    this.open();
  }

  /** Watch `desktopClientId` (monitor: a number, or null for all); null id: watch nothing. */
  watch(desktopClientId, monitor = null) {
    const previous = this.watching;
    if (previous && previous.desktopClientId !== desktopClientId && this.subscribed)
      this.send({ type: 'unsubscribe', desktopClientId: previous.desktopClientId });
    this.watching = desktopClientId ? { desktopClientId, monitor } : null;
    this.subscribed = false;
    this.subscribe();
  }

  /** frame_ack after the frame was drawn (acking n settles the older ones, docs/protocol.md). */
  ack(header, latencyMs) {
    if (!this.watching) return;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    // The compact binary frame_ack (docs/protocol.md, "Binary frame_ack"): 16 + n bytes.
    const id = this.watching.desktopClientId;
    const b = new Uint8Array(16 + id.length);
    const v = new DataView(b.buffer);
    v.setUint8(0, 0xAC);
    v.setBigUint64(1, BigInt(header.frameNumber));
    v.setUint32(9, Math.max(0, Math.min(3600000, Math.round(latencyMs))));
    v.setUint16(13, header.monitor ?? 0xFFFF);
    v.setUint8(15, id.length);
    for (let i = 0; i < id.length; i++) b[16 + i] = id.charCodeAt(i);
    this.ws.send(b);
  }

  /** Sends a command object to the watched desktop; false when there is nowhere to send it. */
  command(command) {
    if (!this.watching || !this.subscribed) return false;
    return this.send({ type: 'command', desktopClientId: this.watching.desktopClientId, command });
  }

  // ------------------------------------------------------------------ connection

  open() {
    this.clearTimers();
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.lost(`cannot open ${this.url}: ${e.message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => this.send({ type: 'handshake', protocol: 1, role: 'viewer', token: this.token });
    ws.onmessage = (ev) => {
      this.lastLife = performance.now(); // any message proves life
      if (typeof ev.data === 'string') this.onText(ev.data);
      else this.onBinary(ev.data);
    };
    ws.onerror = () => {}; // the close event follows and says what happened
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 1008 && /unauthori[sz]ed/i.test(ev.reason)) this.refused('unauthorized: add ?token=… to the URL');
      else this.lost(ev.code === 1006 ? 'relay unreachable' : `closed ${ev.code}${ev.reason ? ' ' + ev.reason : ''}`);
    };
    // A relay that accepts TCP but never answers (frozen, overloaded) must not hold us forever.
    this.timers.connect = setTimeout(() => this.lost('the relay did not answer the handshake'), this.connectTimeoutMs);
  }

  /** The connection (or attempt) is gone: forget it and schedule the next try. */
  lost(reason) {
    if (this.stopped) return;
    this.drop(4000, reason);
    this.clearTimers();
    if (this.watching && this.subscribed) {
      this.subscribed = false;
      this.emit('waiting', { desktopClientId: this.watching.desktopClientId, reason: 'relay connection lost' });
    }
    // Without the relay nothing is known to be online; the next handshake_ack tells again.
    if ([...this.desktops.values()].some((d) => d.online)) {
      for (const d of this.desktops.values()) d.online = false;
      this.emitDesktops();
    }
    const { delayMs, breakerOpen } = this.retry.failure();
    this.retryAt = Date.now() + delayMs;
    if (breakerOpen) this.setState('offline', `relay unreachable (${reason})`);
    else this.setState(this.everConnected ? 'reconnecting' : 'connecting', reason);
    this.timers.retry = setTimeout(() => this.open(), delayMs);
  }

  /** The relay refused us for a reason retrying cannot fix. */
  refused(reason) {
    this.drop(1000, reason);
    this.clearTimers();
    this.retryAt = 0;
    this.setState('offline', reason);
  }

  drop(code, reason) {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(code === 1000 || (code >= 3000 && code < 5000) ? code : 4000, reason.slice(0, 100)); } catch { /* closing anyway */ }
  }

  clearTimers() {
    clearTimeout(this.timers.retry);
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.ping);
    clearInterval(this.timers.check);
  }

  startHeartbeat() {
    clearInterval(this.timers.ping);
    clearInterval(this.timers.check);
    this.lastLife = performance.now();
    const bound = this.heartbeatMs * (MISSED_LIMIT + 1);
    this.timers.ping = setInterval(() => this.send({ type: 'ping', timestamp: Date.now() }), this.heartbeatMs);
    // Checked often, so a silent relay is noticed within the bound (+ a quarter interval at most).
    this.timers.check = setInterval(() => {
      if (performance.now() - this.lastLife >= bound) this.lost('heartbeat timeout');
    }, Math.max(50, Math.min(1000, this.heartbeatMs / 4)));
  }

  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  setState(state, reason = '') {
    this.state = state;
    this.emit('state', { state, retryAt: this.retryAt, reason });
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // ------------------------------------------------------------------ messages

  onText(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; } // never from a real relay; nothing to do
    if (!msg || typeof msg.type !== 'string') return;
    switch (msg.type) {
      case 'handshake_ack': this.onHandshakeAck(msg); break;
      case 'ping': this.send({ type: 'pong', timestamp: msg.timestamp, serverTime: Date.now() }); break;
      case 'pong': if (Array.isArray(msg.availableDesktopClients)) this.onAvailable(msg.availableDesktopClients); break;
      case 'subscribed': this.onSubscribed(msg); break;
      case 'desktop_connected': this.onDesktopConnected(msg); break;
      case 'desktop_disconnected': this.onDesktopDisconnected(msg.desktopClientId); break;
      case 'redirect': if (typeof msg.url === 'string') this.emit('redirect', { url: msg.url }); break;
      case 'error': this.onError(msg); break;
      case 'command_queued': case 'command_result': this.emit('command', { message: msg }); break;
      default: break; // unsubscribed, and types added later: nothing to do
    }
  }

  onHandshakeAck(msg) {
    clearTimeout(this.timers.connect);
    this.retry.success();
    this.retryAt = 0;
    this.everConnected = true;
    this.viewerId = String(msg.viewerId || '');
    this.heartbeatMs = Number(msg.heartbeatIntervalMs) > 0 ? Number(msg.heartbeatIntervalMs) : 5000;
    this.startHeartbeat();
    const listed = new Set();
    for (const d of Array.isArray(msg.desktops) ? msg.desktops : []) {
      if (!d || typeof d.clientId !== 'string') continue;
      listed.add(d.clientId);
      this.upsert(d, true);
    }
    for (const d of this.desktops.values()) if (!listed.has(d.clientId)) d.online = false;
    this.emitDesktops();
    this.setState('connected');
    this.subscribed = false;
    this.subscribe(); // after ANY reconnect: what the user was watching, again
  }

  onAvailable(ids) {
    const online = new Set(ids.filter((id) => typeof id === 'string'));
    let changed = false;
    for (const id of online) {
      const d = this.desktops.get(id);
      if (!d) { this.upsert({ clientId: id }, true); changed = true; } else if (!d.online) { d.online = true; changed = true; }
    }
    for (const d of this.desktops.values())
      if (d.online && !online.has(d.clientId)) { d.online = false; changed = true; }
    if (changed) this.emitDesktops();
    if (this.watching && !this.subscribed && online.has(this.watching.desktopClientId)) this.subscribe();
  }

  onSubscribed(msg) {
    if (!this.watching || msg.desktopClientId !== this.watching.desktopClientId) return;
    this.subscribed = true;
    const monitors = Array.isArray(msg.monitors) ? msg.monitors : [];
    const d = this.desktops.get(msg.desktopClientId);
    if (d) { d.monitors = monitors; d.online = true; this.emitDesktops(); }
    this.emit('subscribed', { desktopClientId: msg.desktopClientId, monitors });
  }

  onDesktopConnected(msg) {
    const d = msg.desktop && typeof msg.desktop === 'object' ? msg.desktop : { clientId: msg.desktopClientId };
    if (typeof d.clientId !== 'string') return;
    this.upsert(d, true);
    this.emitDesktops();
    // The watched desktop (re)registered: subscribe again (harmless when still subscribed:
    // the relay only updates the monitor filter and answers with the current monitors).
    if (this.watching && this.watching.desktopClientId === d.clientId) this.subscribe();
  }

  onDesktopDisconnected(id) {
    const d = this.desktops.get(id);
    if (d) { d.online = false; this.emitDesktops(); }
    if (this.watching && this.watching.desktopClientId === id) {
      this.subscribed = false;
      this.emit('waiting', { desktopClientId: id, reason: 'desktop disconnected; waiting for it to come back' });
    }
  }

  onError(msg) {
    const code = String(msg.code || 'error');
    const message = String(msg.message || '');
    // Before handshake_ack an unauthorized error is the relay refusing this token (1008 follows).
    if (code === 'unauthorized' && this.state !== 'connected') { this.refused('unauthorized: add ?token=… to the URL'); return; }
    if (code === 'not_found' && this.watching && !this.subscribed)
      this.emit('waiting', { desktopClientId: this.watching.desktopClientId, reason: 'desktop not connected; waiting for it' });
    this.emit('relayerror', { code, message });
  }

  onBinary(buffer) {
    if (!this.subscribed) return; // frames still in flight from before an unsubscribe
    let frame;
    try { frame = parseFrame(buffer); } catch { return; } // the relay validates frames; skip a bad one
    this.emit('frame', frame);
  }

  subscribe() {
    if (!this.watching || this.state !== 'connected') return;
    const msg = { type: 'subscribe', desktopClientId: this.watching.desktopClientId };
    if (Number.isInteger(this.watching.monitor)) msg.monitor = this.watching.monitor;
    this.send(msg);
  }

  upsert(d, online) {
    const old = this.desktops.get(d.clientId) || { clientId: d.clientId, name: '', hostname: '', monitors: [], viewers: 0 };
    this.desktops.set(d.clientId, {
      clientId: d.clientId,
      name: typeof d.name === 'string' ? d.name : old.name,
      hostname: typeof d.hostname === 'string' ? d.hostname : old.hostname,
      monitors: Array.isArray(d.monitors) ? d.monitors : old.monitors,
      viewers: Number.isInteger(d.viewers) ? d.viewers : old.viewers,
      online,
    });
  }

  /** Figures from GET /api/desktops (all instances): online state, monitors, viewers. */
  mergeApiDesktops(list) {
    const listed = new Set();
    for (const d of list) {
      if (!d || typeof d.clientId !== 'string') continue;
      listed.add(d.clientId);
      this.upsert(d, true);
    }
    for (const d of this.desktops.values()) if (!listed.has(d.clientId)) d.online = false;
    this.emitDesktops();
    if (this.watching && !this.subscribed && listed.has(this.watching.desktopClientId)) this.subscribe();
  }

  emitDesktops() { this.emit('desktops', { desktops: [...this.desktops.values()] }); }
}
