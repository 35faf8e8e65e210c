/**
 * A call the tool cannot carry out as asked: a bad or ambiguous argument, a missing setting.
 * The message names the argument and what was expected; it becomes an MCP tool error
 * (`isError: true`), which the assistant reads and can correct.
 */
export class ToolInputError extends Error {
  override name = 'ToolInputError';
}

/** What an unexpected failure says to the client: its kind, never its message (addresses, SQL). */
export function failureKind(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown };
  if (typeof e?.code === 'string' && /^[A-Z0-9_]{2,40}$/.test(e.code)) return e.code;
  return typeof e?.name === 'string' ? e.name : 'Error';
}
