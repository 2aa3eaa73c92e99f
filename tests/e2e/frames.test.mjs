// Frames as sets of rects through the real relay into the real viewer page (issue 11): a
// scripted agent (a second browser page speaking the agent protocol over its own WebSocket)
// draws a 320x200 picture and sends every change as a frame of several raw BGRA rects, and a
// key frame (the whole picture, in strips) only when the relay sends it request_keyframe. The
// viewer page must show exactly the agent's picture: at once when it opens while nothing
// changes (the relay asked for the key frame), and after a burst of multi-rect frames; the agent
// gets one frame_ack per frame.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Relay, freePort, scratch, launchBrowser, watchConsole, eventually, sleep } from './lib/harness.mjs';

let relay, browser, agentPage, viewerPage, consoleLog;

// A 32-bit FNV-1a of RGBA bytes, computed in each page (shipping 256 000 numbers per poll is slow).
const FINGERPRINT = `window.fingerprint = (d) => { let h = 0x811c9dc5; for (let i = 0; i < d.length; i++) { h ^= d[i]; h = Math.imul(h, 16777619); } return (h >>> 0).toString(16) + ':' + d.length; };`;

before(async () => {
  const dir = scratch('frames');
  const port = await freePort();
  relay = await new Relay(port, join(dir, 'relay')).startAndWait();
  browser = await launchBrowser();
  agentPage = await browser.newPage();
  await agentPage.goto(`${relay.base}/healthz`);
  await agentPage.addScriptTag({ content: FINGERPRINT });
  await agentPage.evaluate(async (url) => {
    const W = 320, H = 200;
    const picture = new OffscreenCanvas(W, H).getContext('2d', { willReadFrequently: true });
    picture.fillStyle = '#204060';
    picture.fillRect(0, 0, W, H);
    const a = { frame: 0, keyRequests: 0, acks: new Map(), sent: [], ws: null };
    // One rect message: the 64-byte header of docs/protocol.md, then raw BGRA.
    const rectMessage = (n, flags, x, y, w, h) => {
      const rgba = picture.getImageData(x, y, w, h).data;
      const buf = new ArrayBuffer(64 + rgba.length);
      const v = new DataView(buf);
      v.setUint32(0, 0x44534631, false);
      v.setUint16(4, 64, true);
      v.setUint8(6, 5);
      v.setUint8(7, flags);
      v.setBigUint64(8, BigInt(n), true);
      v.setBigUint64(16, BigInt(Date.now() * 1000), true);
      v.setUint8(30, 100);
      v.setUint32(32, W, true); v.setUint32(36, H, true);
      v.setUint32(40, x, true); v.setUint32(44, y, true); v.setUint32(48, w, true); v.setUint32(52, h, true);
      v.setUint32(56, rgba.length, true);
      const out = new Uint8Array(buf, 64);
      for (let i = 0; i < rgba.length; i += 4) { out[i] = rgba[i + 2]; out[i + 1] = rgba[i + 1]; out[i + 2] = rgba[i]; out[i + 3] = 255; }
      return buf;
    };
    a.sendKeyFrame = () => {
      const n = ++a.frame;
      a.sent.push(n);
      for (let s = 0; s < 4; s++) a.ws.send(rectMessage(n, 1 | 2 | (s === 3 ? 4 : 0), 0, s * 50, W, 50));
    };
    // A change: three rects in colours of this frame, sent as one frame of three rects.
    a.sendChange = () => {
      const n = ++a.frame;
      a.sent.push(n);
      const rects = [0, 1, 2].map((i) => [(n * 37 + i * 101) % (W - 40), (n * 53 + i * 67) % (H - 30), 40, 30]);
      rects.forEach(([x, y, w, h], i) => {
        picture.fillStyle = `rgb(${(n * 40 + i * 80) % 256}, ${(n * 90) % 256}, ${(i * 120 + n) % 256})`;
        picture.fillRect(x, y, w, h);
      });
      rects.forEach(([x, y, w, h], i) => a.ws.send(rectMessage(n, 2 | (i === 2 ? 4 : 0), x, y, w, h)));
    };
    a.pixels = () => window.fingerprint(picture.getImageData(0, 0, W, H).data);
    await new Promise((resolve, reject) => {
      a.ws = new WebSocket(url);
      a.ws.binaryType = 'arraybuffer';
      a.ws.onopen = () => a.ws.send(JSON.stringify({ type: 'handshake', protocol: 1, role: 'desktop', clientId: 'rects-pc', name: 'Rects',
        monitors: [{ index: 0, name: 'M', x: 0, y: 0, width: W, height: H, primary: true }] }));
      a.ws.onerror = () => reject(new Error('agent socket failed'));
      a.ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.type === 'handshake_ack') resolve();
        else if (m.type === 'ping') a.ws.send(JSON.stringify({ type: 'pong', timestamp: m.timestamp }));
        else if (m.type === 'frame_ack') a.acks.set(m.frameNumber, (a.acks.get(m.frameNumber) || 0) + 1);
        else if (m.type === 'command') {
          if (m.command.type === 'request_keyframe') { a.keyRequests += 1; a.sendKeyFrame(); }
          a.ws.send(JSON.stringify({ type: 'command_result', commandId: m.commandId, status: 'done' }));
        }
      };
    });
    window.agent = a;
  }, `ws://127.0.0.1:${port}/ws/agent`);
  viewerPage = await browser.newPage({ viewport: { width: 800, height: 600 } });
  consoleLog = watchConsole(viewerPage);
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

/** True when the viewer's canvas holds exactly the agent's picture. */
async function viewerShowsAgentPicture() {
  const want = await agentPage.evaluate(() => window.agent.pixels());
  const got = await viewerPage.evaluate(() => {
    const c = document.querySelector('#screens canvas[data-monitor="0"]');
    if (!c || c.width !== 320 || c.height !== 200) return null;
    return window.fingerprint(c.getContext('2d').getImageData(0, 0, 320, 200).data);
  });
  return got === want;
}

test('a viewer opening a still desktop sees the whole picture at once: the relay asked for a key frame', async () => {
  // Nothing changes on the agent's screen: without the relay's request no frame would ever come.
  assert.equal(await agentPage.evaluate(() => window.agent.frame), 0);
  const opened = Date.now();
  await viewerPage.goto(`${relay.base}/?desktop=rects-pc`);
  await viewerPage.addScriptTag({ content: FINGERPRINT });
  await eventually(viewerShowsAgentPicture, { timeoutMs: 10000, what: 'the viewer shows the agent picture' });
  const ms = Date.now() - opened;
  console.log(`page opened -> whole picture shown in ${ms} ms`);
  assert.ok(ms < 5000, `shown within 5 s (took ${ms} ms)`);
  const { frame, keyRequests } = await agentPage.evaluate(() => ({ frame: window.agent.frame, keyRequests: window.agent.keyRequests }));
  assert.ok(keyRequests >= 1, 'the relay asked for a key frame');
  assert.equal(frame, keyRequests, 'every frame the agent sent was a key frame it was asked for');
});

test('changes sent as frames of three rects are composited exactly, and acknowledged once per frame', async () => {
  await agentPage.evaluate(async () => {
    for (let i = 0; i < 30; i++) { window.agent.sendChange(); await new Promise((r) => setTimeout(r, 30)); }
  });
  await eventually(viewerShowsAgentPicture, { timeoutMs: 10000, what: 'the viewer shows the changed picture' });
  const { sent, acks } = await eventually(async () => {
    const r = await agentPage.evaluate(() => ({ sent: window.agent.sent, acks: [...window.agent.acks] }));
    return r.acks.length >= r.sent.length ? r : null;
  }, { timeoutMs: 10000, what: 'every frame acknowledged' });
  await sleep(300); // a second ack for a frame would arrive now
  const later = new Map(await agentPage.evaluate(() => [...window.agent.acks]));
  assert.deepEqual([...later.keys()].sort((x, y) => x - y), sent, 'one ack per frame sent');
  for (const [n, count] of later) assert.equal(count, 1, `frame ${n} acknowledged ${count} times`);
  assert.ok(acks.length === sent.length);
});

test('no console errors', () => consoleLog.assertNone());
