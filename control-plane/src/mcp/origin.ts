/**
 * DNS-rebinding protection for /mcp (MCP transport spec, "Security Warning": servers MUST
 * validate Origin; bind to localhost). A page on a hostile site can make a browser talk to
 * 127.0.0.1 under the site's own name; it cannot forge Host or Origin. So:
 * - Host must name this server: a loopback name, CONTROL_PLANE_HOST when it is a concrete
 *   address, or an entry of MCP_ALLOWED_HOSTS (any port, like the SDK's hostHeaderValidation);
 * - Origin, when present (browsers always send it on cross-origin requests), must be a loopback
 *   origin or an entry of MCP_ALLOWED_ORIGINS. Requests without Origin are not from a browser.
 */
const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

export interface OriginPolicy {
  hostAllowed(host: string | undefined): boolean;
  originAllowed(origin: string | undefined): boolean;
}

/** The host name of a Host header value (`name`, `name:port`, `[v6]`, `[v6]:port`), lower case. */
export function hostnameOf(host: string): string | null {
  const h = host.trim().toLowerCase();
  const v6 = /^(\[[0-9a-f:.]+\])(?::\d{1,5})?$/.exec(h);
  if (v6) return v6[1]!;
  const m = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1]! : null;
}

export function createOriginPolicy(opts: {
  listenHost: string;
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}): OriginPolicy {
  const listen = opts.listenHost.includes(':') && !opts.listenHost.startsWith('[') ? `[${opts.listenHost}]` : opts.listenHost;
  const hosts = new Set([...LOOPBACK, ...opts.allowedHosts.map((h) => h.toLowerCase())]);
  if (!WILDCARDS.has(listen.toLowerCase())) hosts.add(listen.toLowerCase());
  const origins = new Set(opts.allowedOrigins);
  return {
    hostAllowed(host) {
      const name = host === undefined ? null : hostnameOf(host);
      return name !== null && hosts.has(name);
    },
    originAllowed(origin) {
      if (origin === undefined) return true;
      if (origins.has(origin)) return true;
      try {
        const u = new URL(origin);
        return (u.protocol === 'http:' || u.protocol === 'https:') && LOOPBACK.includes(u.hostname) && u.origin === origin;
      } catch {
        return false;
      }
    },
  };
}
