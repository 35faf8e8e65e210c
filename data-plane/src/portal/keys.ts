import { z } from 'zod';
import { issueKeyForUser } from '../auth/issue.js';
import { recordAudit, type AuditEntry } from '../store/audit.js';
import { StoreError, isUuid, listKeys, setKeyStatus, type KeyInfo } from '../store/keys.js';
import { countActiveKeys } from '../store/users.js';
import { PortalError } from './errors.js';
import { parseInput, parseJson, sendPortalJson, withSession, type PortalHandler } from './http.js';
import type { Portal } from './runtime.js';

export const KEYS_PATH = '/portal/keys';

/** What an owner sees of a key: never the secret, its hash, or other accounts' data. */
export const keyView = (k: KeyInfo) => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  status: k.status,
  tier: k.tier,
  createdAt: k.createdAt,
  lastUsedAt: k.lastUsedAt,
  revokedAt: k.revokedAt,
});

// Names are labels shown back in the SPA: printable text only (no control characters).
const createInput = z.object({
  name: z
    .string()
    .trim()
    .max(100)
    .regex(/^[^\p{Cc}\p{Cf}]*$/u, 'must not contain control characters')
    .optional(),
});

/** Audit rows are written after the change, like the CLI's; a failure is logged, not answered. */
async function audit(p: Portal, entry: AuditEntry): Promise<void> {
  try {
    await recordAudit(p.sql, entry);
  } catch (err) {
    p.log.error({ err, action: entry.action, keyId: entry.keyId }, 'audit row not written');
  }
}

/** GET /portal/keys → {keys}: the caller's keys, newest first. */
export const listOwnKeys = (p: Portal): PortalHandler =>
  withSession(p, async (ctx, _body, s) => {
    const keys = await listKeys(p.sql, { userId: s.user.id, limit: 1000 });
    sendPortalJson(ctx.sink, 200, { keys: keys.map(keyView) });
  });

/** POST /portal/keys {name?} → 201 {key, secret}. The secret is in this answer only. */
export const createOwnKey = (p: Portal): PortalHandler =>
  withSession(p, async (ctx, body, s) => {
    const input = parseInput(createInput, parseJson(await body, { emptyAs: {} }));
    if ((await countActiveKeys(p.sql, s.user.id)) >= p.config.maxKeysPerUser) {
      throw new PortalError('key_limit_reached', `This account already has ${p.config.maxKeysPerUser} active keys; revoke one first.`);
    }
    const issued = await issueKeyForUser(p.sql, { userId: s.user.id, name: input.name ?? '' });
    if (!issued) throw new PortalError('unauthorized', 'The account no longer exists.');
    await audit(p, {
      actor: `portal:${s.user.id}`,
      action: 'key.created',
      userId: s.user.id,
      keyId: issued.key.id,
      detail: { tier: issued.key.tier },
    });
    sendPortalJson(ctx.sink, 201, { key: keyView(issued.key), secret: issued.secret });
  });

/** The `:id` of /portal/keys/:id; anything that is not a uuid is simply not found. */
export function keyIdFromPath(path: string): string | null {
  const prefix = `${KEYS_PATH}/`;
  if (!path.startsWith(prefix)) return null;
  const id = path.slice(prefix.length);
  return isUuid(id) ? id.toLowerCase() : null;
}

/**
 * DELETE /portal/keys/:id → 200 {key}. Scoped to the caller (store `userId`): another account's
 * key is 404, exactly like a key that does not exist (no IDOR, no existence oracle; OWASP
 * ASVS V4.2.1). Revocation is final and is announced (revocation feed, then pub/sub) so every
 * replica's key cache drops it.
 */
export const revokeOwnKey = (p: Portal): PortalHandler =>
  withSession(p, async (ctx, _body, s) => {
    const id = keyIdFromPath(ctx.req.path);
    if (!id) throw new PortalError('not_found', 'No such key.');
    let change;
    try {
      change = await setKeyStatus(p.sql, id, 'revoked', { userId: s.user.id });
    } catch (e) {
      if (e instanceof StoreError && e.code === 'not_found') throw new PortalError('not_found', 'No such key.');
      throw e;
    }
    // Announced even when it already was revoked: an earlier announcement may have been lost.
    try {
      await p.announceKeyChange({ type: 'revoked', keyId: id, keyHash: change.keyHash });
    } catch (err) {
      // Committed in Postgres; replicas still refuse it once their cache entry expires
      // (KEY_CACHE_TTL_MS, plus KEY_CACHE_STALE_MAX_MS on a replica that cannot reach Postgres).
      p.log.error({ err, keyId: id }, 'key revocation not announced; caches expire it by TTL');
    }
    if (change.changed) await audit(p, { actor: `portal:${s.user.id}`, action: 'key.revoked', userId: s.user.id, keyId: id });
    sendPortalJson(ctx.sink, 200, { key: keyView(change.key) });
  });
