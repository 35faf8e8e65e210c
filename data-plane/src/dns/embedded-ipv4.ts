/**
 * IPv4 addresses carried inside IPv6 addresses, for the SSRF guard (address-policy.ts): without
 * this, 64:ff9b::a9fe:a9fe (NAT64 for 169.254.169.254) or 2002:7f00:1:: (6to4 for 127.0.0.1)
 * would pass as ordinary public IPv6.
 *
 * ISATAP (an interface identifier of 0:5efe:a.b.c.d under any prefix, RFC 5214) is left out:
 * its IPv4 only means something inside the ISATAP site, and matching it would misjudge
 * ordinary global addresses that happen to have those bits.
 */

export type EmbeddingForm = 'mapped' | 'compatible' | 'nat64' | 'nat64-local' | '6to4' | 'teredo';

export interface EmbeddedIpv4 {
  form: EmbeddingForm;
  /** Dotted quads; more than one when the form carries several or its layout is ambiguous. */
  ipv4: string[];
}

/** The 16 bytes of a textual IPv6 address (already validated by isIP), zone id ignored. */
export function ipv6Bytes(address: string): Uint8Array {
  let text = address.split('%')[0] ?? '';
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[i * 2] = v >> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  return bytes;
}

const quad = (b: Uint8Array, at: readonly number[], invert = false): string =>
  at.map((i) => (invert ? ~(b[i] ?? 0) : (b[i] ?? 0)) & 0xff).join('.');
const zeros = (b: Uint8Array, from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);
const LAST_FOUR = [12, 13, 14, 15] as const;

/** The IPv4 an IPv6 address carries, or null for ordinary IPv6 (`address` already valid). */
export function embeddedIpv4(address: string): EmbeddedIpv4 | null {
  const b = ipv6Bytes(address);
  // ::ffff:0:0/96, IPv4-mapped (RFC 4291 §2.5.5.2): the host's own stack speaks IPv4 to it.
  if (zeros(b, 0, 10) && b[10] === 0xff && b[11] === 0xff) return { form: 'mapped', ipv4: [quad(b, LAST_FOUR)] };
  // ::/96, IPv4-compatible (RFC 4291 §2.5.5.1, deprecated); :: and ::1 are not IPv4 addresses.
  if (zeros(b, 0, 12)) return zeros(b, 12, 15) && (b[15] ?? 0) <= 1 ? null : { form: 'compatible', ipv4: [quad(b, LAST_FOUR)] };
  const nat64 = b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b;
  // 64:ff9b::/96, the NAT64 well-known prefix (RFC 6052 §2.1): IPv4 in the last 32 bits.
  if (nat64 && zeros(b, 4, 12)) return { form: 'nat64', ipv4: [quad(b, LAST_FOUR)] };
  // 64:ff9b:1::/48, local-use NAT64 (RFC 8215) with any RFC 6052 §2.2 prefix length from /48
  // to /96 (bits 64–71, the "u" octet, are skipped): every reading is returned.
  if (nat64 && b[4] === 0x00 && b[5] === 0x01) {
    return { form: 'nat64-local', ipv4: [quad(b, [6, 7, 9, 10]), quad(b, [7, 9, 10, 11]), quad(b, [9, 10, 11, 12]), quad(b, LAST_FOUR)] };
  }
  // 2002::/16, 6to4 (RFC 3056 §2): 2002:AABB:CCDD::/48 for the site at A.B.C.D.
  if (b[0] === 0x20 && b[1] === 0x02) return { form: '6to4', ipv4: [quad(b, [2, 3, 4, 5])] };
  // 2001::/32, Teredo (RFC 4380 §4): the client's mapped IPv4 in the last 32 bits with every bit
  // inverted (where the tunnel delivers), the Teredo server's IPv4 in bits 32–63.
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x00 && b[3] === 0x00)
    return { form: 'teredo', ipv4: [quad(b, LAST_FOUR, true), quad(b, [4, 5, 6, 7])] };
  return null;
}
