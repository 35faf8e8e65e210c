/**
 * The write discipline that keeps this uWS build byte-exact (over TLS above all).
 *
 * RULE 1: one res.cork() region carries at most CORK_BUFFER_SIZE bytes in total (one body slice
 * of at most SLICE bytes plus what uWS adds around it). uWS's loop has ONE 16 KiB cork buffer
 * (src/LoopData.h CORK_BUFFER_SIZE). A write that does not fit makes AsyncSocket::write() call
 * uncork(rest): that flushes the cork buffer first, and if the flush meets backpressure it
 * returns {0, true} WITHOUT writing or buffering `rest` (src/AsyncSocket.h, v20.44). For
 * chunked writes HttpResponse::write ignores that count, so a chunk-size line promises bytes
 * the wire never gets (curl: exit 56, "Malformed encoding found in chunked-encoding"). Over TLS
 * the flush is a whole 16 KiB record, so it fails as soon as the socket is backed up. Upstream
 * fixed it in 2026 (uWebSockets 6b7f354; the SSL fast path was disabled in 1cc8605, 2024).
 * Measured on this build (30 MB, curl --limit-rate, 10 runs each): one write per 1-64 KiB chunk,
 * TLS: 0/20 exact; the same slices but several per cork region: 0/20 exact on TLS AND plain;
 * one slice per cork region: 20/20 on both. See data-plane/test/http/README.md.
 *
 * RULE 2: a region must start empty, i.e. we must not be inside a region uWS already holds.
 * uWS corks a socket while it runs that socket's callbacks (route handler, onData), and
 * uWS.js calls JS through node::MakeCallback, so promise continuations resumed there run
 * inside the region too; res.cork() then just joins it. We cannot ask whether we are corked,
 * so a caller's context may spend at most SLICE bytes per event-loop turn, and bigger writes
 * continue from setImmediate or onWritable, which never run inside a uWS region
 * (HttpContext's on_writable does not cork).
 *
 * RULE 3 (TLS, tryEnd only): tryEnd writes "optionally": when BoringSSL could not send, uWS
 * reports 0 bytes taken but SSL_write has already sealed a record of them, and the retry must
 * pass at least those bytes again (SSL_R_BAD_WRITE_RETRY otherwise). Slices are never shrunk
 * below an unaccepted remainder.
 */
import type { HttpResponse } from './uws.js';

export const CORK_BUFFER_SIZE = 16 * 1024;
/** Largest body slice per cork region; 512 B stay free for uWS's framing around it. */
export const SLICE = CORK_BUFFER_SIZE - 512;
/**
 * Budget charged per region for what uWS adds: the chunk-size line (<= 12 B), and on the first
 * write Date (37 B) plus Transfer-Encoding (28 B) or Content-Length (<= 35 B).
 */
export const OVERHEAD = 128;

/** Run `fn` inside res.cork and return its result (writes after an await must be corked). */
export function corked<T>(res: HttpResponse, fn: () => T): T {
  let out: T | undefined;
  res.cork(() => {
    out = fn();
  });
  return out as T;
}

// The turn counter behind RULE 2: one shared setImmediate per loop turn marks its end, so the
// accounting costs one timer per turn, not one per write.
let turn = 0;
let turnTick = false;

function currentTurn(): number {
  if (!turnTick) {
    turnTick = true;
    setImmediate(() => {
      turn++;
      turnTick = false;
    }).unref();
  }
  return turn;
}

/** One response's RULE 2 budget: bytes handed to uWS in the current event-loop turn. */
export class TurnBudget {
  #turn = -1;
  #spent = 0;

  /** Bytes a caller's context may still write this turn. */
  room(): number {
    const t = currentTurn();
    if (t !== this.#turn) {
      this.#turn = t;
      this.#spent = 0;
    }
    return SLICE - this.#spent;
  }

  spend(n: number): void {
    this.room();
    this.#spent += n;
  }
}
