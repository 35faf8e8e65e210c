import type { UsageSample } from '../../src/metrics/counters.js';

/** One finished streamed request as the proxy records it, with `over` replacing any field. */
export const usageSample = (over: Partial<UsageSample> = {}): UsageSample => ({
  status: 200,
  promptTokens: 100,
  completionTokens: 50,
  estimated: false,
  requestBytes: 1000,
  responseBytes: 2000,
  ttfbMs: 30,
  durationMs: 400,
  clientIp: '10.0.0.1',
  model: 'llama3',
  promptFingerprint: 'abcdef123456',
  streamed: true,
  cut: false,
  upstreamError: false,
  ...over,
});
