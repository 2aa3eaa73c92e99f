// The picture: one canvas per shown monitor; frames are sets of rects (docs/protocol.md,
// "Frames") decoded off the main thread (createImageBitmap) and composited at their x,y in one
// step once the frame's last rect arrived (never half a frame on screen), latest-wins for key
// frames, scaling (fit / 1:1) and the mapping from a point on the page to remote monitor
// pixels. No socket: rects are pushed in, drawn frames reported out (one ack per frame).
import { CODEC_MIME, CODEC_RAW_BGRA, completesFrame, isKeyFrame } from './frame.js';

const MAX_QUEUED_RECTS = 256; // beyond this the picture is behind: drop and ask for a keyframe

export class Display {
  /**
   * container: the element the canvases go into.
   * onDrawn(header, latencyMs): a frame was drawn whole (header: its last rect; latency: its
   *   first rect received -> drawn). Called once per frame: the viewer acks there.
   * onDropped(n): n frames were not drawn (superseded by a key frame, incomplete, or waiting
   *   for one).
   * onNeedKeyframe(): the display itself dropped rects (too far behind, undecodable); the
   *   picture needs a key frame. (Frames the relay dropped it asks for by itself.)
   */
  constructor(container, { onDrawn = () => {}, onDropped = () => {}, onNeedKeyframe = () => {} } = {}) {
    this.container = container;
    this.callbacks = { onDrawn, onDropped, onNeedKeyframe };
    this.scaleMode = 'fit';
    this.screens = new Map(); // monitor index -> {canvas, ctx, frames, busy, needsKey, skipping}
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
      // A new canvas holds no picture: it starts on a key frame (the relay asks for one).
      this.screens.set(m.index, { canvas, ctx: canvas.getContext('2d'), frames: [], busy: false, needsKey: true, skipping: null });
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

  /**
   * One rect message arrived. A frame is the set of rects sharing a frameNumber (docs/protocol.md
   * "Frames"): its rects are decoded as they come, and drawn together, in one task, once its last
   * rect is there, so the canvas never shows half a frame. A frame whose last rect never came is
   * not drawn, and then only a key frame (a whole picture) may follow; a key frame makes older
   * undrawn frames moot (latest wins), a partial frame never skips one.
   */
  push({ header, payload }, receivedAt = performance.now()) {
    const screen = this.screens.get(header.monitor);
    if (!screen) return; // a monitor not shown (the subscription may be changing)
    if (header.frameNumber === screen.skipping) return; // the rest of a frame we cannot draw
    let f = screen.frames[screen.frames.length - 1];
    if (!f || f.number !== header.frameNumber || f.complete) {
      if (f && !f.complete) {
        // Its last rect never came (the relay dropped the rest): never drawn, picture incomplete.
        this.discard(screen, [screen.frames.pop()]);
        screen.needsKey = true;
      }
      const key = isKeyFrame(header);
      if (!key && screen.needsKey) {
        screen.skipping = header.frameNumber; // would tear the picture: wait for a key frame
        this.callbacks.onDropped(1);
        return;
      }
      if (key) {
        // A whole picture: frames not drawn yet are moot.
        this.discard(screen, screen.frames.splice(0));
        screen.needsKey = false;
      }
      f = { number: header.frameNumber, key, rects: [], complete: false, last: null, receivedAt };
      screen.frames.push(f);
    }
    const decoded = this.decode(header, payload);
    decoded.catch(() => {}); // reported when the frame is drawn
    f.rects.push({ header, decoded });
    if (completesFrame(header)) { f.complete = true; f.last = header; }
    if (screen.frames.reduce((n, q) => n + q.rects.length, 0) > MAX_QUEUED_RECTS) {
      // The picture is far behind: drop everything and start again from a key frame.
      this.discard(screen, screen.frames.splice(0));
      screen.needsKey = true;
      screen.skipping = header.frameNumber;
      this.callbacks.onNeedKeyframe();
      return;
    }
    if (!screen.busy) this.pump(screen);
  }

  /** Frames that will not be drawn: counted, and their decoded bitmaps released. */
  discard(screen, frames) {
    if (!frames.length) return;
    this.callbacks.onDropped(frames.length);
    for (const f of frames) {
      f.dropped = true;
      for (const r of f.rects) r.decoded.then((img) => img.close?.(), () => {});
    }
  }

  /** Starts decoding a rect: a promise of an ImageData (raw BGRA) or an ImageBitmap. */
  decode(header, payload) {
    if (header.codec === CODEC_RAW_BGRA) {
      const expected = header.width * header.height * 4;
      if (payload.byteLength !== expected) return Promise.reject(new Error(`raw payload is ${payload.byteLength} bytes, expected ${expected}`));
      const img = new ImageData(header.width, header.height);
      for (let i = 0; i < expected; i += 4) {
        img.data[i] = payload[i + 2];
        img.data[i + 1] = payload[i + 1];
        img.data[i + 2] = payload[i];
        img.data[i + 3] = 255;
      }
      return Promise.resolve(img);
    }
    const mime = CODEC_MIME[header.codec];
    if (!mime) return Promise.reject(new Error(`unknown codec ${header.codec}`));
    return createImageBitmap(new Blob([payload], { type: mime }));
  }

  /** Draws complete frames in order, each in one synchronous step once all its rects decoded. */
  async pump(screen) {
    screen.busy = true;
    const generation = this.generation;
    while (screen.frames.length && screen.frames[0].complete) {
      const f = screen.frames[0];
      let images = null;
      try {
        images = await Promise.all(f.rects.map((r) => r.decoded));
      } catch (e) {
        // An undecodable rect: the frame cannot be drawn whole; wait for a key frame.
        console.warn(`frame ${f.number} (monitor ${f.last.monitor}) could not be decoded: ${e.message}`);
      }
      if (generation !== this.generation) return; // layout changed while decoding
      if (f.dropped || screen.frames[0] !== f) continue; // a key frame superseded it meanwhile
      screen.frames.shift();
      if (!images || !this.drawFrame(screen, f, images)) {
        this.discard(screen, [f]);
        screen.needsKey = true;
        this.callbacks.onNeedKeyframe();
        continue;
      }
      this.callbacks.onDrawn(f.last, performance.now() - f.receivedAt);
    }
    screen.busy = false;
  }

  /** All rects of one frame onto the canvas (synchronous: nothing is painted in between). */
  drawFrame(screen, f, images) {
    const { canvas } = screen;
    const { screenWidth, screenHeight } = f.last;
    if (canvas.width !== screenWidth || canvas.height !== screenHeight) {
      if (!f.key) return false; // a partial frame cannot fill a canvas of a new size
      canvas.width = screenWidth; // the remote resolution changed
      canvas.height = screenHeight;
      screen.ctx = canvas.getContext('2d');
      this.layout();
    }
    f.rects.forEach(({ header }, i) => {
      const img = images[i];
      if (img instanceof ImageData) {
        screen.ctx.putImageData(img, header.x, header.y);
      } else {
        screen.ctx.drawImage(img, header.x, header.y, header.width, header.height);
        img.close();
      }
    });
    return true;
  }
}
