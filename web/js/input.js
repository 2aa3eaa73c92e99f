// Mouse, wheel and keyboard on the display turned into `input` commands (docs/protocol.md,
// "Commands"), only while control is on. Coordinates are remote monitor pixels at any scale;
// keys the browser would take (Tab, Backspace, ...) are captured while control is on.

const MOVE_INTERVAL_MS = 50; // at most 20 moves a second: each input is a stored command

export class InputController {
  /**
   * surface: the focusable element holding the canvases; display: the Display (toRemote);
   * send(command): delivers one command object; enabled(): whether control is on.
   */
  constructor(surface, display, send, enabled) {
    Object.assign(this, { surface, display, send, enabled });
    this.lastMoveAt = 0;
    this.pendingMove = null;
    this.moveTimer = 0;
    this.lastMonitor = null;
    this.keysDown = new Set();
    this.listen();
  }

  canvasAt(target) { return target instanceof HTMLCanvasElement && this.surface.contains(target) ? target : null; }

  point(e) {
    const canvas = this.canvasAt(e.target);
    if (!canvas) return null;
    const p = this.display.toRemote(canvas, e.clientX, e.clientY);
    this.lastMonitor = p.monitor;
    return p;
  }

  listen() {
    const s = this.surface;
    s.addEventListener('mousemove', (e) => {
      if (!this.enabled()) return;
      const p = this.point(e);
      if (!p) return;
      this.pendingMove = p;
      const wait = this.lastMoveAt + MOVE_INTERVAL_MS - performance.now();
      if (wait <= 0) this.flushMove();
      else if (!this.moveTimer) this.moveTimer = setTimeout(() => this.flushMove(), wait);
    });
    s.addEventListener('mousedown', (e) => {
      if (!this.enabled()) return;
      const p = this.point(e);
      if (!p) return;
      e.preventDefault();
      s.focus({ preventScroll: true });
      this.pendingMove = null; // the press carries its own position
      this.send({ type: 'input', event: 'mouse_down', button: buttonOf(e), ...p });
    });
    s.addEventListener('mouseup', (e) => {
      if (!this.enabled()) return;
      const p = this.point(e);
      if (!p) return;
      e.preventDefault();
      this.send({ type: 'input', event: 'mouse_up', button: buttonOf(e), ...p });
    });
    s.addEventListener('wheel', (e) => {
      if (!this.enabled()) return;
      const p = this.point(e);
      if (!p) return;
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1; // lines / pages to pixels
      this.send({ type: 'input', event: 'wheel', deltaX: clampDelta(e.deltaX * unit), deltaY: clampDelta(e.deltaY * unit), ...p });
    }, { passive: false });
    s.addEventListener('contextmenu', (e) => { if (this.enabled()) e.preventDefault(); });
    s.addEventListener('keydown', (e) => this.key(e, 'key_down'));
    s.addEventListener('keyup', (e) => this.key(e, 'key_up'));
    // Keys still held when the focus leaves would stay pressed on the remote side.
    s.addEventListener('blur', () => this.releaseKeys());
  }

  key(e, event) {
    if (!this.enabled() || !e.key) return;
    e.preventDefault(); // Tab, Backspace, F5, ... go to the remote desktop, not the browser
    e.stopPropagation();
    const key = e.key.slice(0, 64);
    if (event === 'key_down') this.keysDown.add(key);
    else this.keysDown.delete(key);
    const cmd = { type: 'input', event, key };
    const monitor = this.lastMonitor ?? this.firstMonitor();
    if (monitor !== null) cmd.monitor = monitor;
    this.send(cmd);
  }

  firstMonitor() {
    const c = this.display.canvases()[0];
    return c ? Number(c.dataset.monitor) : null;
  }

  releaseKeys() {
    if (!this.enabled()) { this.keysDown.clear(); return; }
    for (const key of this.keysDown) this.send({ type: 'input', event: 'key_up', key });
    this.keysDown.clear();
  }

  flushMove() {
    clearTimeout(this.moveTimer);
    this.moveTimer = 0;
    if (!this.pendingMove || !this.enabled()) { this.pendingMove = null; return; }
    this.lastMoveAt = performance.now();
    this.send({ type: 'input', event: 'mouse_move', ...this.pendingMove });
    this.pendingMove = null;
  }
}

function buttonOf(e) { return e.button >= 0 && e.button <= 4 ? e.button : 0; }
function clampDelta(v) { return Math.max(-10000, Math.min(10000, Math.round(v))); }
