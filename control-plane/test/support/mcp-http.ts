/**
 * The MCP SDK's own client over Streamable HTTP, for tests that talk to a running control plane
 * (also the data plane's `npm start` tests, which may use this harness but not the SDK directly).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export async function connectMcpHttp(url: string, token: string | null, headers: Record<string, string> = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } },
  });
  const client = new Client({ name: 'fluxgate-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}
