import type { Incident, IncidentSummary, SummarySource } from '@fluxgate/contracts';
import type { Ollama } from 'ollama';
import type { Logger } from '../log/logger.js';
import { buildPrompt, SYSTEM_PROMPT } from './prompt.js';
import { templateSummary, usableSummary } from './template.js';

/**
 * Writes a summary for each incident after it is stored, with bounded concurrency:
 * - the model (`ollama.chat`, non-streaming, `LLM_MODEL`), each call bounded by the client's
 *   timeout fetch; a usable answer is stored with source `model`;
 * - otherwise at once the deterministic template (source `template`), so every incident has a
 *   summary whatever the model does. When the model was unreachable or timed out (not when it
 *   answered garbage), the incident is remembered and re-summarised by the model once Ollama
 *   answers again (tried every `retryMs`), replacing the template.
 * Operator incidents are never sent to the model: their template (contracts
 * operatorActionSummary) already says what was done, by whom and why.
 */
export interface SummariserOptions {
  ollama: Pick<Ollama, 'chat'>;
  model: string;
  concurrency: number;
  retryMs: number;
  /** Template-summarised incidents kept for a model retry at most (oldest dropped). */
  retryQueue: number;
  /** Stores a summary; false when the incident is gone (then it is not retried). */
  save: (s: IncidentSummary) => Promise<boolean>;
  /** Current state of an incident for a retry (null: gone). */
  load: (id: string) => Promise<Incident | null>;
  onSummary?: (source: SummarySource) => void;
  onFailure?: (reason: 'unreachable' | 'timeout' | 'garbage' | 'error') => void;
  log?: Logger;
  now?: () => number;
}

export interface Summariser {
  enqueue(incident: Incident): void;
  /** Resolves when nothing is queued or running (tests, shutdown). */
  idle(): Promise<void>;
  /** One retry pass over template-summarised incidents (the timer calls it). */
  retryNow(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
  stats(): { queued: number; running: number; awaitingModel: number };
}

type Outcome = { text: string } | { failure: 'unreachable' | 'timeout' | 'garbage' | 'error' };

function classify(err: unknown): 'unreachable' | 'timeout' | 'error' {
  const e = err as { name?: string; cause?: { code?: string }; code?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  const code = e?.cause?.code ?? e?.code;
  if (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'UND_ERR_SOCKET' ||
    (e as Error)?.message === 'fetch failed'
  )
    return 'unreachable';
  return 'error';
}

export function createSummariser(opts: SummariserOptions): Summariser {
  const now = opts.now ?? Date.now;
  const queue: Incident[] = [];
  /** Ids queued or being summarised, so a backfill never queues one twice. */
  const pending = new Set<string>();
  const awaitingModel = new Set<string>();
  let running = 0;
  let timer: NodeJS.Timeout | undefined;
  let idleWaiters: Array<() => void> = [];
  let retrying: Promise<void> | null = null;

  async function ask(i: Incident): Promise<Outcome> {
    try {
      const res = await opts.ollama.chat({
        model: opts.model,
        stream: false,
        options: { temperature: 0 },
        messages: [
          { role: 'system', content: SYSTEM_PROMPT },
          { role: 'user', content: buildPrompt(i) },
        ],
      });
      const text = usableSummary(typeof res?.message?.content === 'string' ? res.message.content : '');
      return text ? { text } : { failure: 'garbage' };
    } catch (err) {
      return { failure: classify(err) };
    }
  }

  async function summarise(i: Incident): Promise<void> {
    // An operator's action needs no model: the template states what was done, by whom and why.
    if (i.source === 'operator') {
      if (
        i.summarySource !== 'template' &&
        (await opts.save({ id: i.id, summary: templateSummary(i), source: 'template', model: null, at: now() }))
      )
        opts.onSummary?.('template');
      return;
    }
    const outcome = await ask(i);
    const at = now();
    if ('text' in outcome) {
      awaitingModel.delete(i.id);
      if (await opts.save({ id: i.id, summary: outcome.text, source: 'model', model: opts.model, at })) opts.onSummary?.('model');
      return;
    }
    opts.onFailure?.(outcome.failure);
    opts.log?.debug({ incident: i.id, reason: outcome.failure }, 'model summary failed; using the template');
    // A retry that fails again keeps the template already stored.
    if (i.summarySource !== 'template') {
      const stored = await opts.save({ id: i.id, summary: templateSummary(i), source: 'template', model: null, at });
      if (stored) opts.onSummary?.('template');
      else return;
    }
    if (outcome.failure === 'unreachable' || outcome.failure === 'timeout') {
      awaitingModel.add(i.id);
      while (awaitingModel.size > opts.retryQueue) awaitingModel.delete(awaitingModel.values().next().value!);
    }
  }

  const pump = (): void => {
    while (running < opts.concurrency && queue.length > 0) {
      const i = queue.shift()!;
      running++;
      summarise(i)
        .finally(() => pending.delete(i.id))
        .catch((err: unknown) => opts.log?.warn({ err: (err as Error).message, incident: i.id }, 'summary not stored; will be retried'))
        .finally(() => {
          running--;
          pump();
        });
    }
    if (running === 0 && queue.length === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  async function retryPass(): Promise<void> {
    // One probe first: while Ollama is still down, a pass costs one request, not one per incident.
    const ids = [...awaitingModel];
    for (const id of ids) {
      const i = await opts.load(id);
      if (!i) {
        awaitingModel.delete(id);
        continue;
      }
      const before = awaitingModel.size;
      await summarise({ ...i, summarySource: 'template' });
      // Still failing (the id is still awaiting and nothing changed): stop this pass.
      if (awaitingModel.has(id) && awaitingModel.size === before) break;
    }
  }

  return {
    enqueue(i) {
      if (pending.has(i.id)) return;
      pending.add(i.id);
      queue.push(i);
      pump();
    },
    idle: () => (running === 0 && queue.length === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    retryNow() {
      retrying ??= retryPass().finally(() => {
        retrying = null;
      });
      return retrying;
    },
    start() {
      timer ??= setInterval(() => {
        if (awaitingModel.size > 0) void this.retryNow();
      }, opts.retryMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      queue.length = 0;
      pending.clear();
      await retrying;
    },
    stats: () => ({ queued: queue.length, running, awaitingModel: awaitingModel.size }),
  };
}
