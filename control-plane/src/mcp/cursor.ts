import { ToolInputError } from './errors.js';

/**
 * Opaque page cursors: `kind:value` in base64url, so clients pass them back unchanged and a
 * cursor of one list is refused by another with a clear message.
 */
export const encodeCursor = (kind: string, value: string): string => Buffer.from(`${kind}:${value}`, 'utf8').toString('base64url');

export function decodeCursor(cursor: string | undefined, kind: string, valid: RegExp): string | null {
  if (cursor === undefined || cursor === '') return null;
  const text = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const value = text.startsWith(`${kind}:`) ? text.slice(kind.length + 1) : null;
  if (value === null || !valid.test(value))
    throw new ToolInputError(
      `cursor: not a cursor of this list; pass the nextCursor of the previous answer unchanged, or leave it out for the first page`,
    );
  return value;
}
