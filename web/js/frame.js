// The binary frame header of docs/protocol.md ("Frames"): 64 little-endian bytes, then the
// payload. Pure parsing, no DOM, so it can be checked on its own.

export const HEADER_BYTES = 64;
export const FLAG_KEY = 1;        // full picture
export const FLAG_PARTIAL = 2;    // the payload covers only the rect
export const FLAG_LAST_RECT = 4;  // the last rect of this frameNumber
export const CODEC_RAW_BGRA = 5;
export const CODEC_MIME = { 1: 'image/jpeg', 2: 'image/webp', 3: 'image/avif', 4: 'image/png' };
const MAGIC = 0x44534631; // "DSF1" read big-endian

/**
 * Parses one binary message. Returns {header, payload} or throws an Error saying what is wrong
 * (the relay validates frames already; this guards against a broken or foreign peer).
 */
export function parseFrame(buffer) {
  if (buffer.byteLength < HEADER_BYTES) throw new Error(`frame shorter than ${HEADER_BYTES} bytes`);
  const v = new DataView(buffer);
  if (v.getUint32(0, false) !== MAGIC) throw new Error('frame magic is not DSF1');
  const headerLength = v.getUint16(4, true);
  const payloadLength = v.getUint32(56, true);
  if (headerLength < HEADER_BYTES || headerLength + payloadLength !== buffer.byteLength)
    throw new Error('frame lengths disagree');
  const header = {
    codec: v.getUint8(6),
    flags: v.getUint8(7),
    frameNumber: Number(v.getBigUint64(8, true)),
    captureTimeUs: Number(v.getBigUint64(16, true)),
    streamId: v.getUint32(24, true),
    monitor: v.getUint16(28, true),
    quality: v.getUint8(30),
    screenWidth: v.getUint32(32, true),
    screenHeight: v.getUint32(36, true),
    x: v.getUint32(40, true),
    y: v.getUint32(44, true),
    width: v.getUint32(48, true),
    height: v.getUint32(52, true),
  };
  if (header.screenWidth === 0 || header.screenHeight === 0 || header.width === 0 || header.height === 0)
    throw new Error('frame has an empty screen or rect');
  if (header.x + header.width > header.screenWidth || header.y + header.height > header.screenHeight)
    throw new Error('frame rect lies outside the screen');
  return { header, payload: new Uint8Array(buffer, headerLength, payloadLength) };
}

/** True when this message completes its frame (the viewer then acknowledges it). */
export function completesFrame(header) {
  return (header.flags & FLAG_LAST_RECT) !== 0 || (header.flags & FLAG_PARTIAL) === 0;
}

/** True when the rect replaces the whole picture, so older undrawn rects can be skipped. */
export function isFullPicture(header) {
  return (header.flags & FLAG_PARTIAL) === 0 &&
    header.x === 0 && header.y === 0 &&
    header.width === header.screenWidth && header.height === header.screenHeight;
}

/** True when the frame this rect belongs to is a whole picture (needs nothing drawn before it). */
export function isKeyFrame(header) {
  return (header.flags & FLAG_KEY) !== 0 || isFullPicture(header);
}
