import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { McpContext } from './context.js';
import { failureKind, ToolInputError } from './errors.js';
import type { McpIdentity } from './identity.js';

/**
 * One MCP tool: zod input and output schemas, the least role that may see it, and a handler that
 * answers a headline and the structured data. `registerTools` gives the SDK both `content`
 * (headline + JSON, for assistants that read text) and `structuredContent` (checked against the
 * output schema by the SDK on both ends), per the SDK's mcpServerOutputSchema example.
 */
export interface ToolCall {
  ctx: McpContext;
  identity: McpIdentity;
}

export interface ToolSpec<I extends z.ZodRawShape = z.ZodRawShape, O extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  /** Earlier names (DESIGN §5) answered by the same handler. */
  aliases?: readonly string[];
  /** reader: listed to everyone; operator: acting tools, not even listed to readers (issue 18). */
  role: 'reader' | 'operator';
  title: string;
  description: string;
  input: I;
  output: O;
  annotations?: ToolAnnotations;
  run(args: z.output<z.ZodObject<I>>, call: ToolCall): Promise<{ headline: string; data: z.input<z.ZodObject<O>> }>;
}

export const defineTool = <I extends z.ZodRawShape, O extends z.ZodRawShape>(spec: ToolSpec<I, O>): ToolSpec<I, O> => spec;

const text = (t: string): CallToolResult['content'] => [{ type: 'text', text: t }];

export function registerTools(server: McpServer, specs: readonly ToolSpec[], call: ToolCall): void {
  for (const spec of specs) {
    if (spec.role === 'operator' && call.identity.role !== 'operator') continue;
    // Strict: a misspelt argument (`levle`) is an error, never silently dropped for a default.
    const inputSchema = z.strictObject(spec.input);
    const outputSchema = z.object(spec.output);
    const handler = async (args: unknown): Promise<CallToolResult> => {
      try {
        const { headline, data } = await spec.run(args as never, call);
        return { content: text(`${headline}\n\n${JSON.stringify(data, null, 2)}`), structuredContent: data as Record<string, unknown> };
      } catch (err) {
        if (err instanceof ToolInputError) return { content: text(err.message), isError: true };
        call.ctx.log.warn({ tool: spec.name, err: (err as Error)?.message, actor: call.identity.name }, 'MCP tool failed');
        return { content: text(`${spec.name} could not complete (${failureKind(err)}): Redis or Postgres may be unavailable. An acting tool may have stopped part way: check the key or incident before trying again.`), isError: true };
      }
    };
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      const description = name === spec.name ? spec.description : `Earlier name of ${spec.name}. ${spec.description}`;
      server.registerTool(name, { title: spec.title, description, inputSchema, outputSchema, ...(spec.annotations ? { annotations: spec.annotations } : {}) }, handler);
    }
  }
}
