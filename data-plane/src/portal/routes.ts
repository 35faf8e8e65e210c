import type { RouteSpec } from '../routes/context.js';
import { login, logout, me, register } from './accounts.js';
import { portalRoute } from './http.js';
import { createOwnKey, listOwnKeys, revokeOwnKey } from './keys.js';
import { listIncidents, listPenaltyBox, pardon } from './operator.js';
import { buildPortal, type Portal, type PortalDeps } from './runtime.js';
import { usage } from './usage.js';

export type { PortalConfig, PortalDeps } from './runtime.js';
export { DEFAULT_PORTAL_CONFIG } from './runtime.js';

export interface PortalRoute extends RouteSpec {
  method: 'get' | 'post' | 'del';
}

/**
 * The portal's routes (DESIGN.md §3), for app.ts to bind on the public listener:
 *
 * | route                      | auth    | answer |
 * |----------------------------|---------|--------|
 * | POST /portal/register      | none    | 201 {user} |
 * | POST /portal/login         | none    | 200 {token, user, expiresAt} + Set-Cookie fluxgate_session |
 * | POST /portal/logout        | session | 200 {loggedOut}, session revoked, cookie cleared |
 * | GET  /portal/me            | session | 200 {id, email, tier, role} |
 * | GET  /portal/keys          | session | 200 {keys} |
 * | POST /portal/keys          | session | 201 {key, secret} |
 * | DELETE /portal/keys/:id    | session | 200 {key}; another account's key is 404 |
 * | GET  /portal/usage         | session | 200 {window, bucketSeconds, since, until, keys} |
 * | GET  /portal/operator/incidents | operator | 200 {incidents, next, skipped} |
 * | GET  /portal/operator/penalties | operator | 200 {penalties, total} |
 * | POST /portal/operator/penalties/:keyId/pardon | operator | 200 {keyId, lifted, graceUntil, incidentId} |
 *
 * "operator" = a session whose account has the role operator or admin (403 otherwise).
 * "session" = the fluxgate_session cookie (state changes also need `x-fluxgate-csrf: 1`) or
 * `Authorization: Bearer <token>`. Building the routes does no I/O except starting the Argon2
 * dummy hash on libuv's threadpool.
 */
export function createPortalRoutes(deps: PortalDeps): PortalRoute[] {
  return portalRoutes(buildPortal(deps));
}

export function portalRoutes(p: Portal): PortalRoute[] {
  return [
    { method: 'post', pattern: '/portal/register', handler: portalRoute(p, register(p), { body: true }) },
    { method: 'post', pattern: '/portal/login', handler: portalRoute(p, login(p), { body: true }) },
    { method: 'post', pattern: '/portal/logout', handler: portalRoute(p, logout(p), { body: true }) },
    { method: 'get', pattern: '/portal/me', handler: portalRoute(p, me(p), { body: false }) },
    { method: 'get', pattern: '/portal/keys', handler: portalRoute(p, listOwnKeys(p), { body: false }) },
    { method: 'post', pattern: '/portal/keys', handler: portalRoute(p, createOwnKey(p), { body: true }) },
    { method: 'del', pattern: '/portal/keys/:id', handler: portalRoute(p, revokeOwnKey(p), { body: false }) },
    { method: 'get', pattern: '/portal/usage', handler: portalRoute(p, usage(p), { body: false }) },
    { method: 'get', pattern: '/portal/operator/incidents', handler: portalRoute(p, listIncidents(p), { body: false }) },
    { method: 'get', pattern: '/portal/operator/penalties', handler: portalRoute(p, listPenaltyBox(p), { body: false }) },
    { method: 'post', pattern: '/portal/operator/penalties/:keyId/pardon', handler: portalRoute(p, pardon(p), { body: true }) },
  ];
}
