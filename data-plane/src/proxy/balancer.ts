/**
 * Upstream choice: by model when an upstream lists it, else least outstanding requests.
 *
 * Groups, in order: upstreams listing the model, then upstreams that list no models (they serve
 * any). When no upstream lists no models, a model nobody lists goes to all of them (the upstream
 * answers its own "model not found"). Within a group the lowest (outstanding + 1) / weight wins,
 * so a weight-2 upstream carries about twice the concurrent requests of a weight-1 one; equal
 * scores rotate (round-robin) so idle upstreams share the load.
 */
import type { UpstreamHealth } from './health.js';
import type { UpstreamDefinition } from './types.js';

export interface BalancedUpstream {
  readonly def: UpstreamDefinition;
  readonly health: UpstreamHealth;
  /** Requests dispatched to it and not yet finished. */
  outstanding: number;
}

export interface Pick<T> {
  upstream: T;
  /** This request is the breaker's half-open trial. */
  trial: boolean;
}

export class Balancer<T extends BalancedUpstream> {
  readonly #byModel = new Map<string, T[]>();
  readonly #anyModel: T[];
  readonly #all: readonly T[];
  #cursor = 0;

  constructor(upstreams: readonly T[]) {
    this.#all = upstreams;
    this.#anyModel = upstreams.filter((u) => u.def.models.length === 0);
    for (const u of upstreams) {
      for (const m of u.def.models) {
        const list = this.#byModel.get(m);
        if (list === undefined) this.#byModel.set(m, [u]);
        else list.push(u);
      }
    }
  }

  /** Chooses and acquires an upstream; prefers ones not in `tried` (retries go elsewhere). */
  pick(model: string | null, tried: readonly T[], now: number): Pick<T> | null {
    const listed = model === null ? undefined : this.#byModel.get(model);
    const groups: ReadonlyArray<readonly T[]> =
      listed !== undefined ? [listed, this.#anyModel] : [this.#anyModel.length > 0 ? this.#anyModel : this.#all];
    if (tried.length > 0) {
      for (const g of groups) {
        const p = this.#pickIn(g, tried, now);
        if (p !== null) return p;
      }
    }
    for (const g of groups) {
      const p = this.#pickIn(g, null, now);
      if (p !== null) return p;
    }
    return null;
  }

  #pickIn(group: readonly T[], exclude: readonly T[] | null, now: number): Pick<T> | null {
    const n = group.length;
    if (n === 0) return null;
    const start = this.#cursor++ % n;
    let best: T | null = null;
    let bestScore = Infinity;
    for (let k = 0; k < n; k++) {
      const u = group[(start + k) % n] as T;
      if (exclude !== null && exclude.includes(u)) continue;
      if (!u.health.available(now)) continue;
      const score = (u.outstanding + 1) / u.def.weight;
      if (score < bestScore) {
        best = u;
        bestScore = score;
      }
    }
    if (best === null) return null;
    const slot = best.health.acquire(now);
    return slot === null ? null : { upstream: best, trial: slot.trial };
  }
}
