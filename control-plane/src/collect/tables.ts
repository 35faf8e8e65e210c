import type { Reply } from './resp.js';

/**
 * Dense storage for one window's counters. Members (key ids, IPs) get a stable integer index
 * from an `Interner` shared by all windows; a window keeps its members' indexes and their values
 * in typed arrays. Summing windows is then array arithmetic instead of hash-map work per member
 * per window — at 100k active keys the maps were most of the cycle and of its memory.
 */
export class Interner {
  readonly ids: string[] = [];
  readonly #index = new Map<string, number>();
  indexOf(id: string): number {
    let i = this.#index.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(id);
      this.#index.set(id, i);
    }
    return i;
  }
  get size(): number {
    return this.ids.length;
  }
}

/** A counter value: missing = 0; anything but a non-negative integer = malformed (NaN). */
export function counterValue(v: Reply | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : Number.NaN;
  if (typeof v !== 'string' || v.length === 0 || v.length > 15) return Number.NaN;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
}

export class Table {
  #members: Int32Array;
  #values: Float64Array;
  #rows = 0;
  constructor(
    readonly width: number,
    capacity: number,
  ) {
    this.#members = new Int32Array(Math.max(1, capacity));
    this.#values = new Float64Array(Math.max(1, capacity) * width);
  }
  get rows(): number {
    return this.#rows;
  }
  /** Empties the table for reuse, keeping (or growing to) room for `capacity` rows. */
  reset(capacity: number): this {
    this.#rows = 0;
    if (this.#members.length < capacity) {
      this.#members = new Int32Array(capacity);
      this.#values = new Float64Array(capacity * this.width);
    }
    return this;
  }
  /** Adds a member's HMGET reply; false (nothing added) when it is malformed. */
  add(member: number, reply: Reply | undefined): boolean {
    if (!Array.isArray(reply) || reply.length !== this.width) return false;
    if (this.#rows === this.#members.length) this.#grow();
    const base = this.#rows * this.width;
    for (let i = 0; i < this.width; i++) {
      const n = counterValue(reply[i]);
      if (Number.isNaN(n)) return false;
      this.#values[base + i] = n;
    }
    this.#members[this.#rows++] = member;
    return true;
  }
  /**
   * Adds a member's packed value (contracts packed-windows.ts: `width` decimal integers joined
   * by commas), parsed in place; false (nothing added) when it is anything else.
   */
  addPacked(member: number, text: Reply | undefined): boolean {
    if (typeof text !== 'string') return false;
    if (this.#rows === this.#members.length) this.#grow();
    const base = this.#rows * this.width;
    let field = 0;
    let n = 0;
    let digits = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 44) {
        if (digits === 0 || field >= this.width - 1) return false;
        this.#values[base + field++] = n;
        n = 0;
        digits = 0;
        continue;
      }
      const d = c - 48;
      if (d < 0 || d > 9 || ++digits > 15) return false;
      n = n * 10 + d;
    }
    if (digits === 0 || field !== this.width - 1) return false;
    this.#values[base + field] = n;
    this.#members[this.#rows++] = member;
    return true;
  }
  member(row: number): number {
    return this.#members[row]!;
  }
  value(row: number, field: number): number {
    return this.#values[row * this.width + field]!;
  }
  /** Rewrites member indexes after the interner was rebuilt. */
  remap(map: Int32Array): void {
    for (let r = 0; r < this.#rows; r++) this.#members[r] = map[this.#members[r]!]!;
  }
  #grow(): void {
    const m = new Int32Array(this.#members.length * 2);
    m.set(this.#members);
    this.#members = m;
    const v = new Float64Array(this.#values.length * 2);
    v.set(this.#values);
    this.#values = v;
  }
}

/**
 * Sums of several tables by member: `add` each table, then read the touched members. The arrays
 * are reused from cycle to cycle (a generation stamp marks which slots are current).
 */
export class Accumulator {
  #sums = new Float64Array(0);
  #max = new Float64Array(0);
  #stamp = new Int32Array(0);
  #gen = 0;
  readonly touched: number[] = [];
  constructor(readonly width: number) {}

  reset(size: number): void {
    if (this.#stamp.length < size) {
      const n = Math.max(size, this.#stamp.length * 2, 1024);
      this.#sums = new Float64Array(n * this.width);
      this.#max = new Float64Array(n);
      this.#stamp = new Int32Array(n);
      this.#gen = 0;
    }
    this.#gen++;
    this.touched.length = 0;
  }

  /** Adds every row of `t`; field `maxField` (if any) is max-merged instead of summed. */
  add(t: Table, maxField = -1): void {
    const w = this.width;
    for (let r = 0; r < t.rows; r++) {
      const m = t.member(r);
      const base = m * w;
      if (this.#stamp[m] !== this.#gen) {
        this.#stamp[m] = this.#gen;
        this.touched.push(m);
        for (let f = 0; f < w; f++) this.#sums[base + f] = 0;
        this.#max[m] = 0;
      }
      for (let f = 0; f < w; f++) {
        const v = t.value(r, f);
        if (f === maxField) {
          if (v > this.#max[m]!) this.#max[m] = v;
        } else this.#sums[base + f] = this.#sums[base + f]! + v;
      }
    }
  }
  sum(member: number, field: number): number {
    return this.#sums[member * this.width + field]!;
  }
  max(member: number): number {
    return this.#max[member]!;
  }
}
