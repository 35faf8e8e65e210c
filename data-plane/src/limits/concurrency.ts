/**
 * In-process concurrency caps: one for the whole replica (503 beyond) and one per API key
 * (429 beyond). Each admitted request holds a slot until its single `finish`, which releases it.
 * The per-account cap (key-limits.ts) counts with the same SlotCounter.
 */
export interface ConcurrencyGate {
  tryAcquireGlobal(): boolean;
  releaseGlobal(): void;
  tryAcquireKey(keyId: string, cap: number): boolean;
  releaseKey(keyId: string): void;
  readonly open: number;
  openFor(keyId: string): number;
}

/** Open slots per id, each acquire checked against the caller's cap. */
export class SlotCounter {
  readonly #open = new Map<string, number>();

  tryAcquire(id: string, cap: number): boolean {
    const n = this.#open.get(id) ?? 0;
    if (n >= cap) return false;
    this.#open.set(id, n + 1);
    return true;
  }

  release(id: string): void {
    const n = this.#open.get(id) ?? 0;
    // Delete at zero so the map only ever holds ids with open requests.
    if (n <= 1) this.#open.delete(id);
    else this.#open.set(id, n - 1);
  }

  count(id: string): number {
    return this.#open.get(id) ?? 0;
  }
}

export function createConcurrencyGate(globalCap: number): ConcurrencyGate {
  let open = 0;
  const perKey = new SlotCounter();
  return {
    tryAcquireGlobal() {
      if (open >= globalCap) return false;
      open += 1;
      return true;
    },
    releaseGlobal() {
      if (open > 0) open -= 1;
    },
    tryAcquireKey: (keyId, cap) => perKey.tryAcquire(keyId, cap),
    releaseKey: (keyId) => perKey.release(keyId),
    get open() {
      return open;
    },
    openFor: (keyId) => perKey.count(keyId),
  };
}
