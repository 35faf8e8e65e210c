/**
 * The inference surface: which (method, path) pairs may reach an upstream at all.
 *
 * Model servers expose far more than inference: Ollama deletes, pulls, pushes and creates models
 * on the same port, and nothing upstream knows who is asking. So the gateway forwards an
 * allow-list per API family and refuses everything else itself, before authentication and
 * before reading the body (cheap for junk, and nothing to buffer).
 *
 * Paths are matched as the client sent them (not decoded), so they must be unambiguous first:
 * a path that an upstream, a proxy in between or a router could read as a different path
 * (dot segments, encoded `.` `/` `\`, a backslash, empty segments) is refused with 400 (RFC 3986
 * §3.3 and §5.2.4; percent-encoded delimiters and dot segments are the classic allow-list
 * bypass). Pure: no I/O, one pass over the path.
 */
import { GatewayError } from '../errors.js';

export type ApiFamily = 'openai' | 'ollama';

/** Roles (users.role) whose keys may use model management when it is enabled. */
const MANAGERS: ReadonlySet<string> = new Set(['operator', 'admin']);

export interface SurfaceOptions {
  /** PROXY_MODEL_MANAGEMENT: expose Ollama model management to operator keys. */
  modelManagement: boolean;
}

/** What the allow-list says about one request. */
export type SurfaceVerdict =
  | { ok: true; family: ApiFamily; /** A model-management call: the key's owner must be an operator. */ management: boolean }
  | { ok: false; family: ApiFamily; error: GatewayError };

interface Endpoint {
  methods: ReadonlySet<string>;
  /** The Allow field value for a 405 (RFC 9110 §10.2.1). */
  allow: string;
  management: boolean;
}

interface FamilyTable {
  /** Path after the family prefix, exactly. */
  exact: ReadonlyMap<string, Endpoint>;
  /** Prefixes (ending in '/') followed by an id of `segments` segments ('+': one or more). */
  params: ReadonlyArray<{ prefix: string; segments: 1 | '+'; endpoint: Endpoint }>;
}

const endpoint = (methods: string[], management = false): Endpoint => ({
  methods: new Set(methods),
  allow: methods.join(', '),
  management,
});

const POST = endpoint(['POST']);
// RFC 9110 §9.1: a server that supports GET on a resource supports HEAD on it too.
const GET = endpoint(['GET', 'HEAD']);

function openaiTable(): FamilyTable {
  return {
    exact: new Map([
      ['chat/completions', POST],
      ['completions', POST],
      ['embeddings', POST],
      ['responses', POST],
      ['moderations', POST],
      ['models', GET],
    ]),
    // Model ids may contain '/' (Hugging Face names served by vLLM, Ollama namespaces): the id
    // is every segment after models/.
    params: [{ prefix: 'models/', segments: '+', endpoint: GET }],
  };
}

function ollamaTable(modelManagement: boolean): FamilyTable {
  const exact = new Map<string, Endpoint>([
    ['chat', POST],
    ['generate', POST],
    ['embed', POST],
    ['embeddings', POST],
    ['show', POST],
    ['tags', GET],
    ['version', GET],
    ['ps', GET],
  ]);
  if (!modelManagement) return { exact, params: [] };
  // Off by default: with the setting off these paths do not exist for the gateway (404).
  const manage = (methods: string[]) => endpoint(methods, true);
  exact.set('delete', manage(['DELETE']));
  for (const p of ['pull', 'push', 'create', 'copy']) exact.set(p, manage(['POST']));
  return { exact, params: [{ prefix: 'blobs/', segments: 1, endpoint: manage(['HEAD', 'POST']) }] };
}

// Percent-encoded '.', '/' and '\' in either case (RFC 3986 §2.1: hex digits are case-insensitive).
const ENCODED_DELIMITER = /%(?:2e|2f|5c)/i;
// A whole segment of '.' or '..' (RFC 3986 §3.3), anywhere in the path.
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/** Why `rest` (the path after the family prefix) is ambiguous, or null when it is not. No allocation. */
function syntaxProblem(rest: string): string | null {
  if (rest.includes('\\')) return 'a backslash';
  if (ENCODED_DELIMITER.test(rest)) return "a percent-encoded '.', '/' or '\\'";
  if (rest === '' || rest.startsWith('/') || rest.endsWith('/') || rest.includes('//')) return "an empty segment ('//' or a trailing '/')";
  if (DOT_SEGMENT.test(rest)) return "a '.' or '..' segment";
  return null;
}

function match(table: FamilyTable, rest: string): Endpoint | null {
  const exact = table.exact.get(rest);
  if (exact !== undefined) return exact;
  for (const p of table.params) {
    if (!rest.startsWith(p.prefix) || rest.length === p.prefix.length) continue;
    if (p.segments === 1 && rest.indexOf('/', p.prefix.length) !== -1) continue;
    return p.endpoint;
  }
  return null;
}

/** The path as echoed in an error message: bounded, whatever the client sent. */
const shown = (path: string): string => (path.length > 200 ? `${path.slice(0, 200)}…` : path);

export interface Surface {
  /** Checks a request to `/v1/…` or `/api/…` (path without the query string, as sent). */
  check(method: string, path: string): SurfaceVerdict;
}

export function createSurface(opts: SurfaceOptions): Surface {
  const tables: Record<ApiFamily, FamilyTable> = { openai: openaiTable(), ollama: ollamaTable(opts.modelManagement) };
  return {
    check(method, path) {
      const family: ApiFamily = path.startsWith('/api/') ? 'ollama' : 'openai';
      const prefix = family === 'ollama' ? '/api/' : '/v1/';
      if (!path.startsWith(prefix)) return { ok: false, family, error: new GatewayError('not_found') };
      const rest = path.slice(prefix.length);
      const problem = syntaxProblem(rest);
      if (problem !== null)
        return { ok: false, family, error: new GatewayError('bad_request', `The request path is not allowed: it contains ${problem}.`) };
      const found = match(tables[family], rest);
      if (found === null) return { ok: false, family, error: new GatewayError('not_found', `Unknown endpoint ${shown(path)}.`) };
      if (!found.methods.has(method)) {
        // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
        const message = `${shown(path)} does not support ${method}; use ${found.allow}.`;
        return { ok: false, family, error: new GatewayError('method_not_allowed', message, { headers: [['allow', found.allow]] }) };
      }
      return { ok: true, family, management: found.management };
    },
  };
}

/** May a key whose owner has `role` use model management (once PROXY_MODEL_MANAGEMENT is on)? */
export const mayManageModels = (role: string): boolean => MANAGERS.has(role);

export const MANAGEMENT_FORBIDDEN = 'Model management needs an API key whose owner has the operator role.';
