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

/** A tool of any shapes (its handler's argument type differs per tool; registerTools passes the parsed object on). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyToolSpec = ToolSpec<any, any>;

const text = (t: string): CallToolResult['content'] => [{ type: 'text', text: t }];

export function registerTools(server: McpServer, specs: readonly AnyToolSpec[], call: ToolCall): void {
  for (const spec of specs) {
    if (spec.role === 'operator' && call.identity.role !== 'operator') continue;
    // Strict: a misspelt argument (`levle`) is an error, never silently dropped for a default.
    const inputSchema = z.strictObject(spec.input);
    const outputSchema = z.object(spec.output);
    const handler = async (args: unknown): Promise<CallToolResult> => {
      const { ctx, identity } = call;
      try {
        const { headline, data } = await spec.run(args as never, call);
        const found = (data as { found?: unknown }).found !== false;
        ctx.metrics?.toolCall(spec.name, found ? 'ok' : 'not_found');
        // Acting tools leave a log line besides their incident (never the arguments: a pasted secret would land there).
        if (spec.role === 'operator')
          ctx.log.info(
            { tool: spec.name, actor: identity.name, via: identity.via, changed: (data as { changed?: unknown }).changed ?? null },
            'MCP action',
          );
        return { content: text(`${headline}\n\n${JSON.stringify(data, null, 2)}`), structuredContent: data as Record<string, unknown> };
      } catch (err) {
        if (err instanceof ToolInputError) {
          ctx.metrics?.toolCall(spec.name, 'bad_arguments');
          return { content: text(err.message), isError: true };
        }
        ctx.metrics?.toolCall(spec.name, 'failed');
        ctx.log.warn({ tool: spec.name, err: (err as Error)?.message, actor: identity.name }, 'MCP tool failed');
        return {
          content: text(
            `${spec.name} could not complete (${failureKind(err)}): Redis or Postgres may be unavailable. An acting tool may have stopped part way: check the key or incident before trying again.`,
          ),
          isError: true,
        };
      }
    };
    for (const name of [spec.name, ...(spec.aliases ?? [])]) {
      const description = name === spec.name ? spec.description : `Earlier name of ${spec.name}. ${spec.description}`;
      server.registerTool(
        name,
        { title: spec.title, description, inputSchema, outputSchema, ...(spec.annotations ? { annotations: spec.annotations } : {}) },
        handler,
      );
    }
  }
}
