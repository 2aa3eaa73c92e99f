// The display and frame modules of the viewer (web/js/display.js, web/js/frame.js) in a real
// Chromium, fed hand-built frames without a socket: partial rectangles composited per the
// header flags (docs/protocol.md, "Frames") and drawn whole once the last rect arrived (never a
// torn frame; after an incomplete frame only a key frame), acknowledgement once per frame,
// latest-wins for full pictures (never for partial rects), raw BGRA, a resolution change,
// coordinates mapped to remote pixels at any scale, malformed headers refused; and the retry
// policy (web/js/retry.js) behind the viewer's reconnects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { env, launchBrowser, watchConsole } from './lib/harness.mjs';

const ORIGIN = 'http://deskstream.test';
let browser, page, consoleLog;

before(async () => {
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 800, height: 600 } });
  consoleLog = watchConsole(page);
  // The viewer's files straight from web/, plus an empty page holding a 400x300 container.
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/blank') {
      return route.fulfill({ contentType: 'text/html', body: '<!doctype html><link rel="icon" href="data:,"><div id="screens" style="width:400px;height:300px;display:flex;gap:8px"></div>' });
    }
    const file = normalize(join(env.webRoot, path));
    if (!file.startsWith(env.webRoot)) return route.fulfill({ status: 404, body: '' });
    return route.fulfill({ contentType: 'text/javascript', body: readFileSync(file) });
  });
  await page.goto(`${ORIGIN}/blank`);
  await page.evaluate(async () => {
    const { Display } = await import('/js/display.js');
    const frame = await import('/js/frame.js');
    const log = { drawn: [], dropped: 0, keyframes: 0 };
    const display = new Display(document.getElementById('screens'), {
      onDrawn: (h) => log.drawn.push(h.frameNumber),
      onDropped: (n) => { log.dropped += n; },
      onNeedKeyframe: () => { log.keyframes += 1; },
    });
    // One binary message: header (docs/protocol.md) + payload.
    const build = (h, payload) => {
      const buf = new ArrayBuffer(64 + payload.byteLength);
      const v = new DataView(buf);
      v.setUint32(0, 0x44534631, false);
      v.setUint16(4, 64, true);
      v.setUint8(6, h.codec);
      v.setUint8(7, h.flags);
      v.setBigUint64(8, BigInt(h.frameNumber), true);
      v.setBigUint64(16, BigInt(Date.now() * 1000), true);
      v.setUint16(28, h.monitor ?? 0, true);
      v.setUint8(30, 80);
      v.setUint32(32, h.sw, true); v.setUint32(36, h.sh, true);
      v.setUint32(40, h.x, true); v.setUint32(44, h.y, true); v.setUint32(48, h.w, true); v.setUint32(52, h.h, true);
      v.setUint32(56, payload.byteLength, true);
      new Uint8Array(buf, 64).set(new Uint8Array(payload));
      return buf;
    };
    const png = async (w, h, colour) => {
      const c = new OffscreenCanvas(w, h);
      const ctx = c.getContext('2d');
      ctx.fillStyle = colour;
      ctx.fillRect(0, 0, w, h);
      return (await c.convertToBlob({ type: 'image/png' })).arrayBuffer();
    };
    const pixel = (x, y, monitor = 0) => {
      const c = document.querySelector(`canvas[data-monitor="${monitor}"]`);
      return [...c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3)];
    };
    const settle = async () => { for (let i = 0; i < 100; i++) { await new Promise((r) => setTimeout(r, 20)); if (![...display.screens.values()].some((s) => s.busy)) return; } };
    window.t = { display, frame, log, build, png, pixel, settle };
  });
});

after(async () => { await browser?.close(); });

test('partial rectangles are composited over the last picture; one ack per completed frame', async () => {
  const r = await page.evaluate(async () => {
    const { display, frame, log, build, png, pixel, settle } = window.t;
    const F = frame;
    display.setMonitors([{ index: 0, width: 200, height: 100 }]);
    const push = (h, p) => display.push(F.parseFrame(build(h, p)));
    push({ codec: 4, flags: F.FLAG_KEY | F.FLAG_LAST_RECT, frameNumber: 1, sw: 200, sh: 100, x: 0, y: 0, w: 200, h: 100 }, await png(200, 100, '#ff0000'));
    push({ codec: 4, flags: F.FLAG_PARTIAL, frameNumber: 2, sw: 200, sh: 100, x: 50, y: 20, w: 40, h: 30 }, await png(40, 30, '#00ff00'));
    push({ codec: 4, flags: F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 2, sw: 200, sh: 100, x: 120, y: 60, w: 30, h: 20 }, await png(30, 20, '#0000ff'));
    await settle();
    return { drawn: [...log.drawn], outside: pixel(10, 10), green: pixel(60, 30), blue: pixel(130, 70), between: pixel(100, 50), edge: pixel(90, 50) };
  });
  assert.deepEqual(r.drawn, [1, 2], 'frame 2 is acknowledged once, after its last rect');
  assert.deepEqual(r.outside, [255, 0, 0]);
  assert.deepEqual(r.green, [0, 255, 0]);
  assert.deepEqual(r.blue, [0, 0, 255]);
  assert.deepEqual(r.between, [255, 0, 0]);
  assert.deepEqual(r.edge, [255, 0, 0], 'the rect ends at x = 50 + 40');
});

test('raw BGRA rects are drawn with their colours', async () => {
  const r = await page.evaluate(async () => {
    const { display, frame: F, build, pixel, settle } = window.t;
    const bgra = new Uint8Array(10 * 10 * 4);
    for (let i = 0; i < bgra.length; i += 4) { bgra[i] = 255; bgra[i + 1] = 128; bgra[i + 2] = 0; bgra[i + 3] = 0; }
    display.push(F.parseFrame(build({ codec: 5, flags: F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 3, sw: 200, sh: 100, x: 180, y: 80, w: 10, h: 10 }, bgra.buffer)));
    await settle();
    return { rect: pixel(185, 85), beside: pixel(175, 85) };
  });
  assert.deepEqual(r.rect, [0, 128, 255], 'B=255 G=128 R=0 shows as rgb(0,128,255)');
  assert.deepEqual(r.beside, [255, 0, 0]);
});

test('latest wins for full pictures; partial rects are never skipped', async () => {
  const r = await page.evaluate(async () => {
    const { display, frame: F, log, build, png, pixel, settle } = window.t;
    log.drawn.length = 0;
    log.dropped = 0;
    const colours = ['#100000', '#200000', '#300000', '#400000', '#500000', '#600000', '#700000', '#800000', '#900000', '#a00000'];
    const payloads = await Promise.all(colours.map((c) => png(200, 100, c)));
    payloads.forEach((p, i) => display.push(F.parseFrame(build({ codec: 4, flags: F.FLAG_KEY | F.FLAG_LAST_RECT, frameNumber: 10 + i, sw: 200, sh: 100, x: 0, y: 0, w: 200, h: 100 }, p))));
    await settle();
    const full = { drawn: [...log.drawn], dropped: log.dropped, colour: pixel(100, 50) };
    log.drawn.length = 0;
    const rects = await Promise.all([0, 1, 2, 3, 4].map(() => png(20, 20, '#00ffff')));
    rects.forEach((p, i) => display.push(F.parseFrame(build({ codec: 4, flags: F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 30 + i, sw: 200, sh: 100, x: i * 40, y: 0, w: 20, h: 20 }, p))));
    await settle();
    return { full, partial: { drawn: [...log.drawn], cells: [0, 1, 2, 3, 4].map((i) => pixel(i * 40 + 10, 10)) } };
  });
  assert.equal(r.full.drawn[r.full.drawn.length - 1], 19, 'the newest picture is the one left on screen');
  assert.ok(r.full.drawn.length < 10, `some pictures were skipped (drawn ${r.full.drawn})`);
  assert.equal(r.full.drawn.length + r.full.dropped, 10, 'every frame was drawn or counted as dropped');
  assert.deepEqual(r.full.colour, [0xa0, 0, 0]);
  assert.deepEqual(r.partial.drawn, [30, 31, 32, 33, 34]);
  for (const c of r.partial.cells) assert.deepEqual(c, [0, 255, 255]);
});

test('a frame of several rects is drawn whole, only once its last rect arrived', async () => {
  const r = await page.evaluate(async () => {
    const { display, frame: F, log, build, png, pixel, settle } = window.t;
    display.setMonitors([{ index: 0, width: 200, height: 100 }]);
    log.drawn.length = 0;
    const push = (h, p) => display.push(F.parseFrame(build(h, p)));
    const base = { codec: 4, sw: 200, sh: 100 };
    push({ ...base, flags: F.FLAG_KEY | F.FLAG_PARTIAL, frameNumber: 50, x: 0, y: 0, w: 200, h: 50 }, await png(200, 50, '#ff0000'));
    push({ ...base, flags: F.FLAG_KEY | F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 50, x: 0, y: 50, w: 200, h: 50 }, await png(200, 50, '#ff0000'));
    await settle();
    push({ ...base, flags: F.FLAG_PARTIAL, frameNumber: 51, x: 0, y: 0, w: 20, h: 20 }, await png(20, 20, '#00ff00'));
    await settle();
    const beforeLast = { drawn: [...log.drawn], first: pixel(10, 10) };
    push({ ...base, flags: F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 51, x: 100, y: 50, w: 20, h: 20 }, await png(20, 20, '#0000ff'));
    await settle();
    return { beforeLast, drawn: [...log.drawn], first: pixel(10, 10), second: pixel(110, 60) };
  });
  assert.deepEqual(r.beforeLast.drawn, [50], 'the key frame of two strips is one drawn frame');
  assert.deepEqual(r.beforeLast.first, [255, 0, 0], 'the first rect of frame 51 is not shown alone');
  assert.deepEqual(r.drawn, [50, 51], 'one acknowledgement per frame');
  assert.deepEqual(r.first, [0, 255, 0]);
  assert.deepEqual(r.second, [0, 0, 255]);
});

test('a frame whose last rect never came is not drawn, nor any partial frame after it until a key frame', async () => {
  const r = await page.evaluate(async () => {
    const { display, frame: F, log, build, png, pixel, settle } = window.t;
    log.drawn.length = 0;
    log.dropped = 0;
    const push = (h, p) => display.push(F.parseFrame(build(h, p)));
    const base = { codec: 4, sw: 200, sh: 100 };
    push({ ...base, flags: F.FLAG_PARTIAL, frameNumber: 60, x: 0, y: 0, w: 20, h: 20 }, await png(20, 20, '#ffff00'));
    // The relay dropped the rest of frame 60; the next partial frame would tear the picture.
    push({ ...base, flags: F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 61, x: 40, y: 0, w: 20, h: 20 }, await png(20, 20, '#ff00ff'));
    await settle();
    const torn = { drawn: [...log.drawn], a: pixel(10, 10), b: pixel(50, 10) };
    // The key frame the relay asked for: a whole picture of a new size, in two rects.
    push({ ...base, sw: 300, sh: 100, flags: F.FLAG_KEY | F.FLAG_PARTIAL, frameNumber: 62, x: 0, y: 0, w: 150, h: 100 }, await png(150, 100, '#00ffff'));
    push({ ...base, sw: 300, sh: 100, flags: F.FLAG_KEY | F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 62, x: 150, y: 0, w: 150, h: 100 }, await png(150, 100, '#ffffff'));
    push({ ...base, sw: 300, sh: 100, flags: F.FLAG_PARTIAL | F.FLAG_LAST_RECT, frameNumber: 63, x: 0, y: 0, w: 20, h: 20 }, await png(20, 20, '#000000'));
    await settle();
    const c = document.querySelector('canvas[data-monitor="0"]');
    return { torn, drawn: [...log.drawn], dropped: log.dropped, size: [c.width, c.height], left: pixel(100, 50), right: pixel(250, 50), corner: pixel(5, 5) };
  });
  assert.deepEqual(r.torn.drawn, [], 'neither frame 60 nor 61 was drawn');
  assert.deepEqual(r.torn.a, [0, 255, 0], 'the picture is unchanged (green from frame 51)');
  assert.deepEqual(r.torn.b, [255, 0, 0], 'frame 61 is not shown');
  assert.deepEqual(r.drawn, [62, 63]);
  assert.equal(r.dropped, 2, 'frames 60 and 61 counted as not drawn');
  assert.deepEqual(r.size, [300, 100], 'the key frame resized the canvas');
  assert.deepEqual(r.left, [0, 255, 255]);
  assert.deepEqual(r.right, [255, 255, 255]);
  assert.deepEqual(r.corner, [0, 0, 0], 'partial frames resume after the key frame');
});

test('a new remote resolution resizes the canvas; page points map to remote pixels at any scale', async () => {
  const r = await page.evaluate(async () => {
    const { display, frame: F, build, png, settle } = window.t;
    display.setScaleMode('fit');
    display.push(F.parseFrame(build({ codec: 4, flags: F.FLAG_KEY | F.FLAG_LAST_RECT, frameNumber: 40, sw: 800, sh: 400, x: 0, y: 0, w: 800, h: 400 }, await png(800, 400, '#ffffff'))));
    await settle();
    const c = document.querySelector('canvas');
    const box = c.getBoundingClientRect();
    const fit = { css: [box.width, box.height], size: [c.width, c.height],
      centre: display.toRemote(c, box.left + box.width / 2, box.top + box.height / 2),
      corner: display.toRemote(c, box.right + 50, box.bottom + 50) };
    display.setScaleMode('1:1');
    const b1 = c.getBoundingClientRect();
    const one = { css: [b1.width, b1.height], p: display.toRemote(c, b1.left + 123.5, b1.top + 45.5) };
    display.setScaleMode('fit');
    return { fit, one, dpr: window.devicePixelRatio };
  });
  assert.deepEqual(r.fit.size, [800, 400]);
  assert.deepEqual(r.fit.css, [400, 200], 'fit: 800x400 shrinks into the 400x300 container');
  assert.deepEqual(r.fit.centre, { monitor: 0, x: 400, y: 200 });
  assert.deepEqual(r.fit.corner, { monitor: 0, x: 799, y: 399 }, 'clamped to the monitor');
  assert.deepEqual(r.one.css, [800 / r.dpr, 400 / r.dpr]);
  assert.deepEqual(r.one.p, { monitor: 0, x: Math.floor(123.5 * r.dpr), y: Math.floor(45.5 * r.dpr) });
});

test('malformed frame headers are refused with the reason', async () => {
  const errors = await page.evaluate(() => {
    const { frame: F, build } = window.t;
    const ok = { codec: 1, flags: 5, frameNumber: 1, sw: 100, sh: 100, x: 0, y: 0, w: 10, h: 10 };
    const tryParse = (buf) => { try { F.parseFrame(buf); return 'accepted'; } catch (e) { return e.message; } };
    const badMagic = build(ok, new ArrayBuffer(4)); new DataView(badMagic).setUint32(0, 0x12345678);
    const badLength = build(ok, new ArrayBuffer(4)); new DataView(badLength).setUint32(56, 5, true);
    return [tryParse(new ArrayBuffer(10)), tryParse(badMagic), tryParse(badLength),
      tryParse(build({ ...ok, x: 95 }, new ArrayBuffer(4))), tryParse(build({ ...ok, w: 0 }, new ArrayBuffer(4))),
      tryParse(build(ok, new ArrayBuffer(4)))];
  });
  assert.deepEqual(errors, ['frame shorter than 64 bytes', 'frame magic is not DSF1', 'frame lengths disagree',
    'frame rect lies outside the screen', 'frame has an empty screen or rect', 'accepted']);
});

test('retry policy: full-jitter backoff within its ceilings, breaker after 5 failures, reset on success', async () => {
  const r = await page.evaluate(async () => {
    const { RetryPolicy } = await import('/js/retry.js');
    const run = (random) => {
      const p = new RetryPolicy({ random });
      const out = [];
      for (let i = 0; i < 7; i++) out.push(p.failure());
      p.success();
      out.push(p.failure());
      return out;
    };
    return { top: run(() => 0.999999), bottom: run(() => 0) };
  });
  assert.deepEqual(r.top.map((x) => x.delayMs), [499, 999, 1999, 3999, 20000, 20000, 20000, 499]);
  assert.deepEqual(r.top.map((x) => x.breakerOpen), [false, false, false, false, true, true, true, false]);
  assert.deepEqual(r.bottom.map((x) => x.delayMs), [0, 0, 0, 0, 20000, 20000, 20000, 0], 'jitter reaches 0; the breaker pause does not jitter');
});

test('no console errors', () => consoleLog.assertNone());
