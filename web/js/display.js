// The picture: one canvas per shown monitor, frames decoded off the main thread
// (createImageBitmap) with latest-wins, partial rectangles composited in order per the header
// flags (docs/protocol.md, "Frames"), scaling (fit / 1:1) and the mapping from a point on the
// page to remote monitor pixels. No socket: frames are pushed in, drawn frames reported out.
import { CODEC_MIME, CODEC_RAW_BGRA, completesFrame, isFullPicture } from './frame.js';

const MAX_QUEUED_RECTS = 64; // beyond this the picture is behind: drop and ask for a keyframe

export class Display {
  /**
   * container: the element the canvases go into.
   * onDrawn(header, latencyMs): a frame was completed on screen (latency: received -> drawn).
   * onDropped(n): n frames were skipped (latest wins) before being drawn.
   * onNeedKeyframe(): partial rectangles had to be dropped; the picture needs a full frame.
   */
  constructor(container, { onDrawn = () => {}, onDropped = () => {}, onNeedKeyframe = () => {} } = {}) {
    this.container = container;
    this.callbacks = { onDrawn, onDropped, onNeedKeyframe };
    this.scaleMode = 'fit';
    this.screens = new Map(); // monitor index -> {canvas, ctx, queue, busy}
    this.generation = 0;      // bumps on reset(): late decodes of an old layout are discarded
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(container);
  }

  /** Shows `monitors` ([{index, width, height, name}]) side by side, dropping other canvases. */
  setMonitors(monitors) {
    this.reset();
    for (const m of monitors) {
      const canvas = document.createElement('canvas');
      canvas.width = Math.max(1, m.width | 0);
      canvas.height = Math.max(1, m.height | 0);
      canvas.dataset.monitor = String(m.index);
      canvas.setAttribute('aria-label', `monitor ${m.index}`);
      this.container.append(canvas);
      this.screens.set(m.index, { canvas, ctx: canvas.getContext('2d'), queue: [], busy: false });
    }
    this.layout();
  }

  reset() {
    this.generation += 1;
    for (const s of this.screens.values()) s.canvas.remove();
    this.screens.clear();
  }

  setScaleMode(mode) {
    this.scaleMode = mode === '1:1' ? '1:1' : 'fit';
    this.layout();
  }

  /** CSS size of each canvas: 1:1 keeps device pixels; fit shrinks or grows the row to the container. */
  layout() {
    const list = [...this.screens.values()];
    if (!list.length) return;
    const gap = 8;
    const totalW = list.reduce((w, s) => w + s.canvas.width, 0);
    const maxH = Math.max(...list.map((s) => s.canvas.height));
    let scale = 1 / (window.devicePixelRatio || 1);
    if (this.scaleMode === 'fit') {
      const box = this.container.getBoundingClientRect();
      const availW = Math.max(1, box.width - gap * (list.length - 1));
      const availH = Math.max(1, box.height);
      scale = Math.min(availW / totalW, availH / maxH);
    }
    this.container.dataset.scale = this.scaleMode;
    for (const s of list) {
      s.canvas.style.width = `${Math.max(1, Math.floor(s.canvas.width * scale))}px`;
      s.canvas.style.height = `${Math.max(1, Math.floor(s.canvas.height * scale))}px`;
    }
  }

  /** Maps a page point (clientX/Y) on a canvas to {monitor, x, y} in remote monitor pixels. */
  toRemote(canvas, clientX, clientY) {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor((clientX - r.left) * canvas.width / r.width);
    const y = Math.floor((clientY - r.top) * canvas.height / r.height);
    return {
      monitor: Number(canvas.dataset.monitor),
      x: Math.min(canvas.width - 1, Math.max(0, x)),
      y: Math.min(canvas.height - 1, Math.max(0, y)),
    };
  }

  canvases() { return [...this.screens.values()].map((s) => s.canvas); }

  /** A frame (or one rect of it) arrived: queue it; a full picture makes older undrawn ones moot. */
  push({ header, payload }, receivedAt = performance.now()) {
    const screen = this.screens.get(header.monitor);
    if (!screen) return; // a monitor not shown (the subscription may be changing)
    const item = { header, payload, receivedAt };
    if (isFullPicture(header) && screen.queue.length) {
      const skipped = new Set(screen.queue.map((q) => q.header.frameNumber)).size;
      screen.queue.length = 0;
      this.callbacks.onDropped(skipped);
    }
    screen.queue.push(item);
    if (screen.queue.length > MAX_QUEUED_RECTS) {
      const skipped = new Set(screen.queue.map((q) => q.header.frameNumber)).size;
      screen.queue.length = 0;
      this.callbacks.onDropped(skipped);
      this.callbacks.onNeedKeyframe();
      return;
    }
    if (!screen.busy) this.pump(screen);
  }

  async pump(screen) {
    screen.busy = true;
    const generation = this.generation;
    while (screen.queue.length) {
      const item = screen.queue.shift();
      const { header } = item;
      try {
        await this.drawRect(screen, item);
      } catch (e) {
        // An undecodable payload: the rest of the picture stays; say it once per frame.
        console.warn(`frame ${header.frameNumber} (monitor ${header.monitor}) could not be decoded: ${e.message}`);
      }
      if (generation !== this.generation) return; // layout changed while decoding
      if (completesFrame(header)) this.callbacks.onDrawn(header, performance.now() - item.receivedAt);
    }
    screen.busy = false;
  }

  async drawRect(screen, { header, payload }) {
    const { canvas } = screen;
    if (canvas.width !== header.screenWidth || canvas.height !== header.screenHeight) {
      canvas.width = header.screenWidth; // the remote resolution changed
      canvas.height = header.screenHeight;
      screen.ctx = canvas.getContext('2d');
      this.layout();
    }
    if (header.codec === CODEC_RAW_BGRA) {
      const expected = header.width * header.height * 4;
      if (payload.byteLength !== expected) throw new Error(`raw payload is ${payload.byteLength} bytes, expected ${expected}`);
      const img = new ImageData(header.width, header.height);
      for (let i = 0; i < expected; i += 4) {
        img.data[i] = payload[i + 2];
        img.data[i + 1] = payload[i + 1];
        img.data[i + 2] = payload[i];
        img.data[i + 3] = 255;
      }
      screen.ctx.putImageData(img, header.x, header.y);
      return;
    }
    const mime = CODEC_MIME[header.codec];
    if (!mime) throw new Error(`unknown codec ${header.codec}`);
    const generation = this.generation;
    const bitmap = await createImageBitmap(new Blob([payload], { type: mime }));
    try {
      if (generation === this.generation)
        screen.ctx.drawImage(bitmap, header.x, header.y, header.width, header.height);
    } finally {
      bitmap.close();
    }
  }
}
