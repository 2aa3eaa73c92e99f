// When to try the relay again: exponential backoff with full jitter, behind a circuit breaker
// (docs/protocol.md, "Heartbeat"; docs/viewer.md). Pure: time and randomness are passed in.

export class RetryPolicy {
  /**
   * baseMs/capMs: a delay is random in [0, min(capMs, baseMs * 2^n)] after the n-th failure in
   * a row. After `threshold` failures in a row the breaker opens: the next try waits `openMs`
   * (a single probe), and each failed probe opens it again.
   */
  constructor({ baseMs = 500, capMs = 30000, threshold = 5, openMs = 20000, random = Math.random } = {}) {
    Object.assign(this, { baseMs, capMs, threshold, openMs, random });
    this.failures = 0;
  }

  /** A connection attempt failed (or a connection was lost): {delayMs, breakerOpen}. */
  failure() {
    this.failures += 1;
    if (this.failures >= this.threshold) return { delayMs: this.openMs, breakerOpen: true };
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** (this.failures - 1));
    return { delayMs: Math.floor(this.random() * ceiling), breakerOpen: false };
  }

  /** The relay accepted us (handshake_ack): start again from the smallest delays. */
  success() { this.failures = 0; }
}
