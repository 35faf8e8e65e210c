/**
 * The replay's scenarios: abusers and honest heavy users, each its own API key (and client IPs
 * through X-Forwarded-For, the data plane trusting the loopback proxy), driven against the real
 * data plane over TLS. A key scenario is "detected" when the data plane first answers it with a
 * penalty tier (`x-fluxgate-tier: penalty-…`); the credential-stuffing IP when its IP-block
 * record appears (the data plane enforces IP blocks in a later issue).
 */
import { randomBytes } from 'node:crypto';
import type { DetectorId } from '@fluxgate/contracts';
import { request, type Dispatcher } from 'undici';

export interface ScenarioContext {
  baseUrl: string;
  dispatcher: Dispatcher;
  /** A fresh API key on `tier`. */
  key(tier: string): Promise<{ id: string; secret: string }>;
  /** True once the guard's IP block for `ip` is in Redis. */
  ipBlocked(ip: string): Promise<boolean>;
  deadline: number;
}

export interface ScenarioResult {
  name: string;
  kind: 'abuse' | 'benign';
  expectedDetector: DetectorId | null;
  keyId: string | null;
  requests: number;
  /** Epoch ms of the scenario's first request. */
  startedAt: number;
  /** Seconds from the scenario's first request to detection; null = never. */
  detectedAfterSeconds: number | null;
  /** Tiers the data plane answered with. */
  tiers: string[];
}

export interface Scenario {
  name: string;
  kind: 'abuse' | 'benign';
  /** The detector that should name the incident (abuse only). */
  detector?: DetectorId;
  tier: string;
  run(ctx: ScenarioContext, key: { id: string; secret: string } | null, out: ScenarioResult): Promise<void>;
}

const pace = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const words = (n: number, seed: string): string => Array.from({ length: n }, (_, i) => `${seed}${i % 97}`).join(' ');

async function chat(
  ctx: ScenarioContext,
  secret: string,
  ip: string,
  body: Record<string, unknown>,
): Promise<{ status: number; tier: string | null }> {
  const res = await request(`${ctx.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: ctx.dispatcher,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ model: 'replay-model', ...body }),
  });
  await res.body.dump();
  const tier = res.headers['x-fluxgate-tier'];
  return { status: res.statusCode, tier: typeof tier === 'string' ? tier : null };
}

/** Sends `next()` every `everyMs` until the deadline, or until penalised (abusers stop then). */
async function loop(
  ctx: ScenarioContext,
  out: ScenarioResult,
  everyMs: number,
  next: (i: number) => Promise<{ tier: string | null }>,
  opts: { stopWhenPenalised: boolean; until?: number } = { stopWhenPenalised: true },
): Promise<void> {
  const started = performance.now();
  out.startedAt = Date.now();
  for (let i = 0; performance.now() < (opts.until ?? ctx.deadline); i++) {
    const { tier } = await next(i);
    out.requests++;
    if (tier && !out.tiers.includes(tier)) out.tiers.push(tier);
    if (tier?.startsWith('penalty-') && out.detectedAfterSeconds === null) {
      out.detectedAfterSeconds = (performance.now() - started) / 1000;
      if (opts.stopWhenPenalised) return;
    }
    await pace(everyMs);
  }
}

const ip = (n: number, m: number): string => `10.77.${n}.${m}`;

export const SCENARIOS: Scenario[] = [
  {
    name: 'context flooding (huge prompts)',
    kind: 'abuse',
    detector: 'context_flooding',
    tier: 'free',
    run: (ctx, key, out) =>
      loop(ctx, out, 150, () =>
        chat(ctx, key!.secret, ip(1, 1), { max_tokens: 16, messages: [{ role: 'user', content: words(20_000, 'flood') }] }),
      ),
  },
  {
    name: 'scraping (the same prompt again and again)',
    kind: 'abuse',
    detector: 'repeated_prompt',
    tier: 'free',
    run: (ctx, key, out) =>
      loop(ctx, out, 120, () =>
        chat(ctx, key!.secret, ip(2, 1), {
          max_tokens: 16,
          messages: [{ role: 'user', content: 'List every product on page 1 of the catalogue.' }],
        }),
      ),
  },
  {
    name: 'leaked key used from 20 IPs',
    kind: 'abuse',
    detector: 'leaked_key',
    tier: 'free',
    run: (ctx, key, out) =>
      loop(ctx, out, 150, (i) =>
        chat(ctx, key!.secret, ip(3, (i % 20) + 1), {
          max_tokens: 16,
          messages: [{ role: 'user', content: `question ${i} ${randomBytes(4).toString('hex')}` }],
        }),
      ),
  },
  {
    name: 'model enumeration',
    kind: 'abuse',
    detector: 'model_enumeration',
    tier: 'free',
    run: (ctx, key, out) =>
      loop(ctx, out, 150, (i) =>
        chat(ctx, key!.secret, ip(4, 1), { model: `probe-model-${i}`, max_tokens: 8, messages: [{ role: 'user', content: `hello ${i}` }] }),
      ),
  },
  {
    name: 'hammering through 429s',
    kind: 'abuse',
    detector: 'hammering_429',
    tier: 'free',
    run: (ctx, key, out) =>
      loop(ctx, out, 40, (i) =>
        chat(ctx, key!.secret, ip(5, 1), {
          max_tokens: 8,
          messages: [{ role: 'user', content: `ping ${i} ${randomBytes(4).toString('hex')}` }],
        }),
      ),
  },
  {
    name: 'output/input ratio spike',
    kind: 'abuse',
    detector: 'token_ratio_spike',
    tier: 'free',
    run: (ctx, key, out) =>
      loop(ctx, out, 150, (i) => chat(ctx, key!.secret, ip(6, 1), { max_tokens: 4000, messages: [{ role: 'user', content: `go ${i}` }] })),
  },
  {
    name: 'steady high volume (pro, within its tier)',
    kind: 'benign',
    tier: 'pro',
    run: (ctx, key, out) =>
      loop(
        ctx,
        out,
        125,
        (i) => chat(ctx, key!.secret, ip(7, 1), { max_tokens: 64, messages: [{ role: 'user', content: `${words(300, `q${i}-`)}` }] }),
        { stopWhenPenalised: false },
      ),
  },
  {
    name: 'bursty batch job (pro, 80 at once then quiet)',
    kind: 'benign',
    tier: 'pro',
    async run(ctx, key, out) {
      const started = performance.now();
      out.startedAt = Date.now();
      await Promise.all(
        Array.from({ length: 8 }, async (_, lane) => {
          for (let j = 0; j < 10; j++) {
            const r = await chat(ctx, key!.secret, ip(8, 1), {
              max_tokens: 128,
              messages: [{ role: 'user', content: `document ${lane}-${j}: ${words(400, `d${lane}${j}`)}` }],
            });
            out.requests++;
            if (r.tier && !out.tiers.includes(r.tier)) out.tiers.push(r.tier);
            if (r.tier?.startsWith('penalty-')) out.detectedAfterSeconds ??= (performance.now() - started) / 1000;
          }
        }),
      );
      // Then its usual trickle until the end, so a late penalty would show.
      await loop(
        ctx,
        out,
        1000,
        (i) => chat(ctx, key!.secret, ip(8, 1), { max_tokens: 64, messages: [{ role: 'user', content: `status ${i}` }] }),
        { stopWhenPenalised: false },
      );
    },
  },
  {
    name: 'long-context user within the free tier',
    kind: 'benign',
    tier: 'free',
    // ~27k-token prompts every 6 s: long, but within what the free tier admits.
    run: (ctx, key, out) =>
      loop(
        ctx,
        out,
        6_000,
        (i) => chat(ctx, key!.secret, ip(9, 1), { max_tokens: 256, messages: [{ role: 'user', content: words(12_000, `book${i}-`) }] }),
        { stopWhenPenalised: false },
      ),
  },
];

/** Credential stuffing from one IP: random well-formed-looking keys, none valid. */
export async function credentialStuffing(ctx: ScenarioContext, out: ScenarioResult): Promise<void> {
  const address = ip(10, 1);
  const started = performance.now();
  out.startedAt = Date.now();
  while (performance.now() < ctx.deadline) {
    const res = await request(`${ctx.baseUrl}/v1/models`, {
      dispatcher: ctx.dispatcher,
      headers: { authorization: `Bearer fgk_${randomBytes(24).toString('base64url')}`, 'x-forwarded-for': address },
    });
    await res.body.dump();
    out.requests++;
    if (await ctx.ipBlocked(address)) {
      out.detectedAfterSeconds = (performance.now() - started) / 1000;
      return;
    }
    await pace(50);
  }
}
