import type { RedisLike } from '@fluxgate/contracts';
import type { Cluster, Redis } from 'ioredis';
import { expectTypeOf, it } from 'vitest';

// contracts/ types its Redis client structurally (it depends on zod only); both ioredis clients
// must satisfy that shape. Checked by `tsc -b` (this file is part of the build).
it('ioredis Redis and Cluster satisfy the contracts client shape', () => {
  expectTypeOf<Redis>().toMatchTypeOf<RedisLike>();
  expectTypeOf<Cluster>().toMatchTypeOf<RedisLike>();
});
