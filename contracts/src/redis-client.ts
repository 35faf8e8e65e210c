/**
 * The smallest Redis client shape the write protocols in contracts/ need, typed structurally so
 * contracts/ depends on zod only: ioredis `Redis` and `Cluster` both satisfy it, and so would any
 * client with `call` and `multi`. Every command goes through `call` (name + arguments), which is
 * what ioredis does internally anyway.
 */
export type RedisArg = string | number;

export interface RedisMultiLike {
  call(command: string, ...args: RedisArg[]): unknown;
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

export interface RedisLike {
  /** True for a Redis Cluster client: MULTI cannot span slots there, so steps run one by one. */
  readonly isCluster?: boolean;
  call(command: string, ...args: RedisArg[]): Promise<unknown>;
  multi(): RedisMultiLike;
}

/**
 * Runs `steps` in order: in one MULTI on a single Redis (atomic), one by one on a Cluster (the
 * keys live in different slots). Writers order their steps so that either way every reader sees
 * a consistent state (see penalty-protocol.ts). Rejects with the first failed step's error.
 */
export async function runSteps(redis: RedisLike, steps: ReadonlyArray<readonly [string, ...RedisArg[]]>): Promise<unknown[]> {
  if (redis.isCluster) {
    const out: unknown[] = [];
    for (const [cmd, ...args] of steps) out.push(await redis.call(cmd, ...args));
    return out;
  }
  const tx = redis.multi();
  for (const [cmd, ...args] of steps) tx.call(cmd, ...args);
  const results = (await tx.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return results.map(([, value]) => value);
}

/** JSON.parse that answers undefined instead of throwing (records written by others may be junk). */
export function parseJsonSafe(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const asString = (v: unknown): string | null => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : null);
export const asStrings = (v: unknown): string[] => (Array.isArray(v) ? v.map(asString).filter((s): s is string => s !== null) : []);
