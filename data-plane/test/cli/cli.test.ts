import { redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth/authenticate.js';
import { createKeyCache } from '../../src/auth/key-cache.js';
import { attachKeyCache } from '../../src/auth/key-events.js';
import { runCli } from '../../src/cli/run.js';
import { GatewayError } from '../../src/errors.js';
import { findKeyByHash, getKey } from '../../src/store/keys.js';
import { connectTestRedis, createTestDatabase, freePort, waitUntil, type TestDatabase, type TestRedis } from '../support/services.js';

const CLI_BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

let db: TestDatabase;
let tr: TestRedis;
let env: Record<string, string>;
beforeAll(async () => {
  db = await createTestDatabase();
  tr = await connectTestRedis();
  env = { DATABASE_URL: db.url, REDIS_URL: tr.url };
});
afterAll(async () => {
  await tr?.close();
  await db?.drop();
});

async function cli(args: string[], envOverride: Record<string, string> = env) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, envOverride, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

const fieldOf = (out: string, name: string) => new RegExp(`^${name}:\\s+(\\S+)$`, 'm').exec(out)?.[1];
const request = (secret: string) => ({ headers: new Map([['x-api-key', secret]]), remoteAddress: '127.0.0.1' });

describe('fluxgate keys', () => {
  it('create prints id, prefix and the secret once; the key then authenticates; revoke rejects it on a live replica', async () => {
    const created = await cli(['keys', 'create', '--email', 'cli@example.com', '--name', 'laptop', '--tier', 'pro']);
    expect(created.code).toBe(0);
    const lines = created.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    const id = fieldOf(created.stdout, 'id')!;
    const prefix = fieldOf(created.stdout, 'prefix')!;
    const secret = fieldOf(created.stdout, 'secret')!;
    expect(secret.startsWith(prefix)).toBe(true);
    expect(created.stdout.split(secret)).toHaveLength(2);
    expect(created.stderr).not.toContain(secret);
    expect(created.stderr).toContain('shown once');

    // A replica: cache over Postgres, subscribed to key events.
    const cache = createKeyCache({ lookup: (h) => findKeyByHash(db.sql, h) });
    const sub = await attachKeyCache(await tr.connect(), cache);
    try {
      const auth = createAuthenticator({ cache });
      expect(await auth(request(secret))).toEqual({ keyId: id, userId: expect.any(String), tier: 'pro', prefix, role: 'user' });

      const listed = await cli(['keys', 'list', '--email', 'CLI@example.com']);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toContain(id);
      expect(listed.stdout).toContain('laptop');
      expect(listed.stdout).not.toContain(secret.slice(prefix.length));

      const revoked = await cli(['keys', 'revoke', id]);
      expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${id} (${prefix})\n` });
      // The CLI's Redis client has no key prefix: the entry is in the shared feed.
      const shared = new Redis(tr.url);
      try {
        expect(await shared.zscore(redisKeys.revokedKeys(), `revoked:${id}`)).not.toBeNull();
      } finally {
        shared.disconnect();
      }
      await waitUntil(
        async () => {
          const r = await auth(request(secret));
          return r instanceof GatewayError && r.code === 'key_revoked';
        },
        { timeoutMs: 1000, message: 'the revocation did not reach the replica' },
      );

      expect(await cli(['keys', 'revoke', id])).toMatchObject({ code: 0, stdout: `${id} (${prefix}) already revoked\n` });
      const reactivate = await cli(['keys', 'activate', id]);
      expect(reactivate.code).toBe(3);
      expect(reactivate.stderr).toMatch(/^fluxgate: key .* is revoked; revocation cannot be undone\n$/);
    } finally {
      await sub.close();
    }
    const audit = await db.sql`SELECT action FROM audit_log WHERE key_id = ${id} ORDER BY id`;
    expect(audit.map((a) => a.action)).toEqual(['key.created', 'key.revoked']);
  });

  it('suspend and activate round-trip', async () => {
    const created = await cli(['keys', 'create', '--email', 'susp@example.com', '--json']);
    const { id } = JSON.parse(created.stdout) as { id: string; secret: string };
    expect((await cli(['keys', 'suspend', id])).code).toBe(0);
    expect((await getKey(db.sql, id))?.status).toBe('suspended');
    expect((await cli(['keys', 'activate', id])).code).toBe(0);
    expect((await getKey(db.sql, id))?.status).toBe('active');
  });

  it('list --json never includes secrets or hashes', async () => {
    const created = await cli(['keys', 'create', '--email', 'json@example.com', '--json']);
    const { secret } = JSON.parse(created.stdout) as { secret: string };
    const listed = await cli(['keys', 'list', '--json']);
    const keys = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(listed.stdout).not.toContain(secret);
    expect(keys.every((k) => !('keyHash' in k) && !('hash' in k))).toBe(true);
  });

  it('answers usage errors with exit 2 and one line', async () => {
    for (const args of [
      ['keys', 'create'],
      ['keys', 'create', '--email', 'nope'],
      ['keys', 'frobnicate'],
      ['keys', 'revoke'],
      ['bogus'],
      ['keys', 'list', '--what'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
  });

  it('answers refusals with exit 3: unknown id, unknown or penalty tier', async () => {
    expect((await cli(['keys', 'revoke', '00000000-0000-4000-8000-000000000000'])).code).toBe(3);
    expect((await cli(['keys', 'suspend', 'not-a-uuid'])).code).toBe(3);
    expect((await cli(['keys', 'create', '--email', 'x@example.com', '--tier', 'platinum'])).stderr).toBe(
      'fluxgate: unknown tier: platinum\n',
    );
    expect((await cli(['keys', 'create', '--email', 'x@example.com', '--tier', 'penalty-1'])).code).toBe(3);
  });

  it('exit 1 with the endpoint (no credentials) when Postgres is unreachable', async () => {
    const port = await freePort();
    const r = await cli(['keys', 'list'], { DATABASE_URL: `postgres://admin:s3cret@127.0.0.1:${port}/x` });
    expect(r).toEqual({ code: 1, stdout: '', stderr: `fluxgate: cannot reach Postgres at 127.0.0.1:${port} (ECONNREFUSED)\n` });
  });

  it('exit 4 when the change is committed but Redis cannot be told', async () => {
    const created = await cli(['keys', 'create', '--email', 'noredis@example.com', '--json']);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const r = await cli(['keys', 'revoke', id], { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/revoked in Postgres, but replicas were not notified/);
    expect(r.stderr).toMatch(/within 60 s \(KEY_CACHE_TTL_MS\), or 65 s on a replica that cannot reach Postgres either/);
    expect((await getKey(db.sql, id))?.status).toBe('revoked');
  });

  it('rejects a malformed DATABASE_URL naming the variable, not the value', async () => {
    const r = await cli(['keys', 'list'], { DATABASE_URL: 'mysql://root:hunter2@db/x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fluxgate: DATABASE_URL: expected postgres:\/\//);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('db migrate is idempotent', async () => {
    expect(await cli(['db', 'migrate'])).toMatchObject({ code: 0 });
    expect(await cli(['db', 'migrate'])).toMatchObject({ code: 0 });
  });

  it('the built binary runs with the same exit codes', async () => {
    if (!existsSync(CLI_BIN)) throw new Error(`${CLI_BIN} is missing: run \`npx tsc -b\` before the tests`);
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [CLI_BIN, 'keys', 'create', '--email', 'bin@example.com', '--json'], {
      env: { ...env, PATH: process.env.PATH },
    });
    const { id, secret } = JSON.parse(stdout) as { id: string; secret: string };
    expect((await findKeyByHash(db.sql, (await import('../../src/auth/key-format.js')).hashKey(secret)))?.id).toBe(id);
    await expect(run(process.execPath, [CLI_BIN, 'keys', 'nope'], { env: { ...env, PATH: process.env.PATH } })).rejects.toMatchObject({
      code: 2,
    });
  });
});

describe('fluxgate users', () => {
  it('promote sets the role, says when nothing changed, and refuses unknown accounts and roles', async () => {
    await cli(['keys', 'create', '--email', 'Ops@Example.com']);
    const first = await cli(['users', 'promote', '--email', 'ops@example.com', '--role', 'operator']);
    expect(first).toMatchObject({ code: 0, stdout: 'ops@example.com: user → operator\n' });
    const [row] = await db.sql<Array<{ role: string }>>`SELECT role FROM users WHERE lower(email) = 'ops@example.com'`;
    expect(row?.role).toBe('operator');
    expect((await cli(['users', 'promote', '--email', 'ops@example.com', '--role', 'operator'])).stdout).toBe(
      'ops@example.com: already operator\n',
    );
    expect((await cli(['users', 'promote', '--email', 'nobody@example.com', '--role', 'admin'])).code).toBe(3);
    expect((await cli(['users', 'promote', '--email', 'ops@example.com', '--role', 'root'])).code).toBe(2);
    expect((await cli(['users', 'promote', '--role', 'admin'])).code).toBe(2);
  });
});
