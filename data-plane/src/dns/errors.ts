/**
 * Errors the resolver's `lookup` hands to undici. The proxy maps upstream failures by `code`
 * (proxy/failure.ts): ENOTFOUND and EAI_AGAIN are getaddrinfo's codes, already mapped to a 502
 * upstream_unavailable; a blocked answer is a GatewayError('upstream_blocked'), which the
 * mapping passes through unchanged (a 502 that says the address is not allowed).
 */
import { GatewayError } from '../errors.js';
import type { BlockedRange } from './address-policy.js';

/** The name does not exist, or has no address of the wanted family (NXDOMAIN / NODATA). */
export class DnsNotFoundError extends Error {
  readonly code = 'ENOTFOUND';
  constructor(
    readonly hostname: string,
    readonly rcode: 'NXDOMAIN' | 'NOERROR' | 'REFUSED',
  ) {
    super(rcode === 'NXDOMAIN' ? `${hostname} does not exist` : `${hostname} has no usable address`);
    this.name = 'DnsNotFoundError';
  }
}

/** No answer could be had right now (upstreams down or SERVFAIL): worth retrying later. */
export class DnsTemporaryError extends Error {
  readonly code = 'EAI_AGAIN';
  constructor(
    readonly hostname: string,
    readonly rcode: string = 'SERVFAIL',
    options?: { cause?: unknown },
  ) {
    super(`${hostname} could not be resolved right now (${rcode})`, options);
    this.name = 'DnsTemporaryError';
  }
}

/**
 * The SSRF guard refused the answer. The client-facing message stays generic (the catalogue's);
 * `hostname`, `address` and `range` are for logs only.
 */
export class DnsBlockedError extends GatewayError {
  constructor(
    readonly hostname: string,
    readonly address: string,
    readonly range: BlockedRange,
  ) {
    super('upstream_blocked');
    this.name = 'DnsBlockedError';
  }
}
