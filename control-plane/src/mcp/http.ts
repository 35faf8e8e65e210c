import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpContext } from './context.js';
import type { createTokenTable } from './identity.js';
import type { OriginPolicy } from './origin.js';
import { createFluxgateMcpServer } from './server.js';

/**
 * /mcp over Streamable HTTP, stateless: every POST gets a fresh server built for the caller's
 * role and a transport that answers in JSON (enableJsonResponse), so no session state lives in
 * this process and any control-plane instance can answer. Order of checks: Host and Origin
 * first (DNS rebinding: 403 before anything else is revealed), then the bearer token (401),
 * then the method (405: without sessions there is no GET stream or DELETE).
 */
export interface McpHttpDeps {
  ctx: McpContext;
  tokens: ReturnType<typeof createTokenTable>;
  origins: OriginPolicy;
  version: string;
}

const MAX_BODY_BYTES = 1 << 20;
const CORS_HEADERS = 'authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id';

function jsonRpcError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...headers,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function createMcpHttpHandler(deps: McpHttpDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const refuse = deps.ctx.metrics?.refused ?? (() => undefined);
    if (!deps.origins.hostAllowed(req.headers.host)) {
      refuse('host');
      return jsonRpcError(res, 403, 'Forbidden: this Host is not allowed (DNS-rebinding protection; see MCP_ALLOWED_HOSTS)');
    }
    const origin = req.headers.origin;
    if (!deps.origins.originAllowed(origin)) {
      refuse('origin');
      return jsonRpcError(res, 403, 'Forbidden: this Origin is not allowed (see MCP_ALLOWED_ORIGINS)');
    }
    // Allowed browser origins (MCP Inspector's direct mode) get CORS; the token is still required.
    const cors: Record<string, string> = origin
      ? { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': 'mcp-session-id, www-authenticate' }
      : {};
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': CORS_HEADERS,
        'access-control-max-age': '600',
      });
      return void res.end();
    }
    const auth = deps.tokens.authenticate(req.headers.authorization);
    if (!auth.ok) {
      refuse(auth.reason === 'invalid' ? 'invalid_token' : auth.reason === 'missing' ? 'missing_token' : 'unconfigured');
      if (auth.reason === 'unconfigured')
        return jsonRpcError(res, 503, 'MCP over HTTP has no token configured: set MCP_TOKENS or MCP_TOKEN (README "MCP")', cors);
      // RFC 6750 §3: the scheme in WWW-Authenticate; error="invalid_token" when one was presented.
      const challenge = auth.reason === 'invalid' ? 'Bearer realm="fluxgate-mcp", error="invalid_token"' : 'Bearer realm="fluxgate-mcp"';
      const message =
        auth.reason === 'invalid' ? 'Unauthorized: the bearer token is not valid' : 'Unauthorized: send Authorization: Bearer <MCP token>';
      return jsonRpcError(res, 401, message, { ...cors, 'www-authenticate': challenge });
    }
    if (req.method !== 'POST') {
      refuse('method');
      return jsonRpcError(res, 405, 'Method not allowed: this server is stateless, use POST', { ...cors, allow: 'POST, OPTIONS' });
    }
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);

    const server = createFluxgateMcpServer(deps.ctx, auth.identity, deps.version);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
      maxRequestBodySize: MAX_BODY_BYTES,
    });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
}
