import { describe, expect, it } from 'vitest';
import { GatewayError, toWireBody } from '../errors.js';
import { PortalError, asPortalError, portalWireBody } from './errors.js';

describe('portal errors', () => {
  it('produce the same wire body as the gateway catalogue for shared codes', () => {
    const g = new GatewayError('payload_too_large', 'too big');
    expect(portalWireBody(asPortalError(g))).toBe(toWireBody(g, 'plain'));
  });

  it('give portal codes their status and OpenAI-style type', () => {
    const e = new PortalError('email_taken');
    expect(e.status).toBe(409);
    expect(JSON.parse(portalWireBody(e))).toEqual({
      error: { message: 'An account with this email already exists.', type: 'invalid_request_error', code: 'email_taken' },
    });
    expect(new PortalError('too_many_attempts').status).toBe(429);
    expect(new PortalError('csrf_failed').status).toBe(403);
  });

  it('map Postgres connection failures to 503 and hide everything else behind a 500', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(asPortalError(refused).code).toBe('service_unavailable');
    const leaky = Object.assign(new Error('duplicate key value violates unique constraint "users_email_lower_key"'), { code: '23505' });
    const body = portalWireBody(asPortalError(leaky));
    expect(JSON.parse(body).error.code).toBe('internal_error');
    expect(body).not.toContain('users_email');
  });
});
