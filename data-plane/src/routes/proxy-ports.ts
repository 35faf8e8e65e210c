import type { GatewayError } from '../errors.js';
import type { RequestSnapshot } from '../http/types.js';
import type { Principal, PresentedKey } from '../auth/authenticate.js';
import type { UsageSample } from '../metrics/counters.js';
import type { InspectedBody } from '../proxy/request-body.js';

export type { Principal, PresentedKey, UsageSample };

/** The inspected request body plus what counters need from it. */
export interface BodyInfo extends InspectedBody {
  /** Estimated prompt tokens (bytes / 4), for counters and, later, reservations. */
  promptTokensEstimate: number;
  /** Short fingerprint of the normalised prompt (repeated-prompt detector); null when empty. */
  promptFingerprint: string | null;
}

export interface ProxyPorts {
  /** Synchronous: the key's presence and format (no lookup); throws the 401 to answer. */
  checkKey(req: RequestSnapshot): PresentedKey;
  /** The lookup of a checked key; rejects with the GatewayError to answer. */
  authenticate(key: PresentedKey, req: RequestSnapshot): Principal | Promise<Principal>;
  inspectBody(req: RequestSnapshot, body: Uint8Array | null): BodyInfo;
  recordUsage(principal: Principal, sample: UsageSample): void;
  /** Bounded metrics: route family, status class, durations. */
  observe(event: { family: 'openai' | 'ollama'; status: number; durationMs: number; ttfbMs: number | null; outcome: string }): void;
  onStreamOpen(delta: 1 | -1): void;
}

export type { GatewayError };
