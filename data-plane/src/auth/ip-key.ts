import { isIPv4, isIPv6 } from 'node:net';

/**
 * The key a per-IP counter (login throttle, uncached key lookups) counts a client under.
 *
 * IPv4 stays exact. IPv6 is grouped by its /64: a /64 is one subnet (RFC 4291 §2.5.4 fixes the
 * interface identifier at 64 bits), typically one customer or host, and a host may pick any
 * address inside it at will (SLAAC privacy addresses, RFC 8981), so counting exact IPv6
 * addresses would give one attacker 2^64 fresh budgets. An IPv4-mapped address (::ffff:a.b.c.d)
 * is the IPv4 client it maps. Anything unparsable is counted as the (bounded) text itself.
 */
export function ipCountingKey(address: string): string {
  const text = address.trim();
  if (isIPv4(text)) return text;
  // Zone ids (fe80::1%eth0) name an interface, not a client.
  const bare = text.replace(/%.*$/, '');
  if (!isIPv6(bare)) return text.slice(0, 64);
  const groups = expandIPv6(bare);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (with `::` and a dotted IPv4 tail expanded). */
function expandIPv6(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
