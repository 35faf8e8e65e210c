/**
 * In-process concurrency caps: one for the whole replica (503 beyond) and one per API key
 * (429 beyond). Each admitted request holds a slot until its single `finish`, which releases it.
 */
export interface ConcurrencyGate {
  tryAcquireGlobal(): boolean;
  releaseGlobal(): void;
  tryAcquireKey(keyId: string, cap: number): boolean;
  releaseKey(keyId: string): void;
  readonly open: number;
  openFor(keyId: string): number;
}

export function createConcurrencyGate(globalCap: number): ConcurrencyGate {
  let open = 0;
  const perKey = new Map<string, number>();
  return {
    tryAcquireGlobal() {
      if (open >= globalCap) return false;
      open += 1;
      return true;
    },
    releaseGlobal() {
      if (open > 0) open -= 1;
    },
    tryAcquireKey(keyId, cap) {
      const n = perKey.get(keyId) ?? 0;
      if (n >= cap) return false;
      perKey.set(keyId, n + 1);
      return true;
    },
    releaseKey(keyId) {
      const n = perKey.get(keyId) ?? 0;
      // Delete at zero so the map only ever holds keys with open requests.
      if (n <= 1) perKey.delete(keyId);
      else perKey.set(keyId, n - 1);
    },
    get open() {
      return open;
    },
    openFor: (keyId) => perKey.get(keyId) ?? 0,
  };
}
