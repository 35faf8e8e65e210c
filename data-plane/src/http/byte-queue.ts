/**
 * The bytes a sink holds between write() and the pump (sink.ts): copies of the caller's chunks in
 * order, read as one view of the first n bytes and dropped from the front as uWS takes them.
 */
import { CORK_BUFFER_SIZE } from './cork.js';

/**
 * Where queued pieces are joined into one region's slice. uWS copies what it is given (into its
 * cork buffer or its backlog) before write/tryEnd return, so one buffer serves every queue.
 */
const SCRATCH = new Uint8Array(CORK_BUFFER_SIZE);

export class ByteQueue {
  #pieces: Uint8Array[] = [];
  /** Bytes queued now. */
  length = 0;
  /** The most bytes ever queued at once. */
  peak = 0;

  /** Queue a copy of `chunk` (we own the caller's bytes only during its call; pooled when small). */
  push(chunk: Uint8Array): void {
    this.#pieces.push(Buffer.from(chunk));
    this.length += chunk.length;
    if (this.length > this.peak) this.peak = this.length;
  }

  /** The first `n` queued bytes (n ≤ length, n ≤ CORK_BUFFER_SIZE) as one view: the first piece itself, or the pieces joined in SCRATCH. */
  peek(n: number): Uint8Array {
    const first = this.#pieces[0]!;
    if (first.length >= n) return n === first.length ? first : first.subarray(0, n);
    let at = 0;
    for (const piece of this.#pieces) {
      const take = Math.min(piece.length, n - at);
      SCRATCH.set(take === piece.length ? piece : piece.subarray(0, take), at);
      at += take;
      if (at === n) break;
    }
    return SCRATCH.subarray(0, n);
  }

  /** Drop `n` bytes uWS took from the front. */
  consume(n: number): void {
    this.length -= n;
    while (n > 0) {
      const first = this.#pieces[0]!;
      if (first.length > n) {
        this.#pieces[0] = first.subarray(n);
        return;
      }
      n -= first.length;
      this.#pieces.shift();
    }
  }

  clear(): void {
    this.#pieces = [];
    this.length = 0;
  }
}
