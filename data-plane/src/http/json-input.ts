import type { z } from 'zod';
import { GatewayError } from '../errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON request body; an empty body is `emptyAs` when given, invalid_json otherwise. */
export function parseJson(bytes: Uint8Array, opts: { emptyAs?: unknown } = {}): unknown {
  if (bytes.length === 0 && 'emptyAs' in opts) return opts.emptyAs;
  try {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  } catch {
    throw new GatewayError('invalid_json');
  }
}

/** Validates parsed input; the first issue becomes a 400 that names the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new GatewayError('bad_request', `${where}${issue?.message ?? 'invalid input'}`);
}
