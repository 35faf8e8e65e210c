/**
 * Input generators for the gateway fuzz properties: raw HTTP/1.1 requests (well-formed ones and
 * damaged ones), JSON bodies for the inference families, and portal bodies.
 */
import fc from 'fast-check';

/** Methods this uWS build routes (others are closed at once: no handler can match them). */
export const ROUTED_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

const PATHS = [
  '/healthz',
  '/readyz',
  '/',
  '/favicon.ico',
  '/dns-query',
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/models',
  '/v1/models/mock-model',
  '/v1/responses',
  '/v1/moderations',
  '/api/chat',
  '/api/generate',
  '/api/embed',
  '/api/embeddings',
  '/api/tags',
  '/api/show',
  '/api/version',
  '/api/ps',
  '/api/pull',
  '/api/delete',
  '/portal/register',
  '/portal/login',
  '/portal/logout',
  '/portal/me',
  '/portal/keys',
  '/portal/keys/1',
  '/portal/usage',
];

const printable = (min: number, max: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: max });
/** Any byte as one latin1 character, so a string carries arbitrary bytes onto the wire. */
const anyByte = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const bytes = (max: number) => fc.string({ unit: anyByte, maxLength: max });

const segment = fc.oneof(
  fc.constantFrom('v1', 'api', 'chat', 'completions', 'models', '..', '.', '%2e%2e', '%2F', '', 'portal', 'keys', 'x'),
  printable(1, 12).map((s) => s.replace(/[?#]/g, '')),
);
/** Request targets in origin-form: known routes, or built from tricky segments, plus a query. */
const target = fc
  .tuple(
    fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom(...PATHS) },
      fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => `/${s.join('/')}`),
    ),
    fc.option(
      printable(0, 40).map((q) => q.replace(/#/g, '')),
      { nil: undefined },
    ),
  )
  .map(([p, q]) => (q === undefined ? p : `${p}?${q}`));

const HEADER_NAMES = [
  'content-type',
  'accept',
  'accept-encoding',
  'x-request-id',
  'x-forwarded-for',
  'forwarded',
  'x-real-ip',
  'cookie',
  'user-agent',
  'expect',
  'connection',
  'upgrade',
  'x-fluxgate-csrf',
  'origin',
  'sec-fetch-site',
  'range',
  'te',
  'trailer',
];
const fieldValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }) },
  fc.constantFrom(
    'application/json',
    'text/plain',
    'close',
    'keep-alive',
    '100-continue',
    'websocket',
    'chunked',
    'gzip, chunked',
    'bytes=0-1',
    '1',
  ),
);

export interface RequestSpec {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  auth: 'none' | 'valid' | 'garbage';
  framing: 'none' | 'length' | 'chunked';
  body: string;
}

/** Requests this uWS build parses: routed method, origin-form target, token names, one Host, exact framing. */
export const wellFormed: fc.Arbitrary<RequestSpec> = fc.record({
  method: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('GET', 'POST') }, fc.constantFrom(...ROUTED_METHODS)),
  target,
  headers: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...HEADER_NAMES), fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/)), fieldValue), {
    maxLength: 6,
  }),
  auth: fc.oneof({ weight: 3, arbitrary: fc.constant('valid' as const) }, fc.constantFrom('none', 'garbage')),
  framing: fc.constantFrom('none', 'length', 'chunked'),
  body: fc.oneof(
    bytes(300),
    fc.json({ maxDepth: 3 }),
    fc.constant('{"model":"mock-model","messages":[{"role":"user","content":"hi"}],"stream":true}'),
  ),
});

const OWNED = new Set(['host', 'content-length', 'transfer-encoding', 'authorization', 'connection', 'expect', 'upgrade']);

/** Serialise a spec; the framing headers are always correct for the body. */
export function serialise(spec: RequestSpec, key: string): string {
  const lines = [`${spec.method} ${spec.target} HTTP/1.1`, 'Host: fuzz.example'];
  // Connection/Expect/Upgrade change how the exchange ends; they are exercised by `damaged`.
  for (const [name, value] of spec.headers) if (!OWNED.has(name.toLowerCase())) lines.push(`${name}: ${value}`);
  if (spec.auth === 'valid') lines.push(`Authorization: Bearer ${key}`);
  if (spec.auth === 'garbage') lines.push('Authorization: Bearer fgk_notakey');
  let body = '';
  if (spec.framing === 'length') {
    lines.push(`Content-Length: ${spec.body.length}`);
    body = spec.body;
  } else if (spec.framing === 'chunked') {
    lines.push('Transfer-Encoding: chunked');
    body = spec.body.length > 0 ? `${spec.body.length.toString(16)}\r\n${spec.body}\r\n0\r\n\r\n` : '0\r\n\r\n';
  }
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A well-formed request with damage: bytes flipped, inserted, cut, or a framing lie. */
export const damaged = (key: string): fc.Arbitrary<string> =>
  fc
    .tuple(
      wellFormed.map((s) => serialise(s, key)),
      fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant('insert' as const),
            at: fc.nat(),
            text: fc.oneof(bytes(4), fc.constantFrom('\r', '\n', '\0', ' ', '\r\n ', '\t', ':', '\r\n\r\n', '\x7f', '\xff')),
          }),
          fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
          fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
          fc.record({
            kind: fc.constant('header' as const),
            at: fc.nat(),
            text: fc.constantFrom(
              'Content-Length: 5',
              'Content-Length: 99999999999',
              'Content-Length: -1',
              'Content-Length: 1, 2',
              'Transfer-Encoding: chunked',
              'Transfer-Encoding: gzip',
              'Transfer-Encoding: gzip, chunked',
              'Transfer-Encoding: chunked, chunked',
              'Host: other.example',
              'Host:',
              'Expect: 100-continue',
              'Connection: close',
              'Connection: upgrade',
              'Upgrade: websocket',
              'X Y: z',
              ': empty',
              'X-A: a\x00b',
              'X-A: a\rb',
              'X-A: a\nb',
              'X-A:\r\n folded',
              'X_A: underscore',
              'X-A: \x7f',
              'X-A: caf\xc3\xa9 \xff',
            ),
          }),
        ),
        { minLength: 1, maxLength: 3 },
      ),
    )
    .map(([text, edits]) => {
      let out = text;
      for (const e of edits) {
        const at = e.at % (out.length + 1);
        if (e.kind === 'insert') out = out.slice(0, at) + e.text + out.slice(at);
        else if (e.kind === 'flip' && out.length > 0) {
          const i = at % out.length;
          out = out.slice(0, i) + String.fromCharCode(out.charCodeAt(i) ^ (1 << e.bit)) + out.slice(i + 1);
        } else if (e.kind === 'cut') out = out.slice(0, at);
        else if (e.kind === 'header') {
          const eol = out.indexOf('\r\n');
          out = eol < 0 ? out : `${out.slice(0, eol + 2)}${e.text}\r\n${out.slice(eol + 2)}`;
        }
      }
      return out;
    });

// ---- JSON bodies for /v1/* and /api/* ---------------------------------------------------------

const weird = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -1e308, 2 ** 53 + 1, 1.5, '', 'x', [], {}),
  fc.double(),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map((b) => b.toString()),
  fc.string({ maxLength: 30 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A chat/completion/embedding-like object whose fields have random, often wrong, types. */
const inferenceObject = fc.record(
  {
    model: fc.oneof(fc.constant('mock-model'), weird),
    messages: fc.oneof(
      fc.array(
        fc.record(
          {
            role: fc.oneof(fc.constantFrom('user', 'system', 'assistant'), weird),
            content: fc.oneof(fc.string({ maxLength: 200 }), weird),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 4 },
      ),
      weird,
    ),
    prompt: fc.oneof(fc.string({ maxLength: 200 }), weird),
    input: fc.oneof(fc.string({ maxLength: 100 }), fc.array(fc.string({ maxLength: 20 }), { maxLength: 4 }), weird),
    stream: fc.oneof(fc.boolean(), weird),
    max_tokens: fc.oneof(fc.integer({ min: -10, max: 5000 }), weird),
    max_completion_tokens: weird,
    stream_options: fc.oneof(fc.record({ include_usage: fc.oneof(fc.boolean(), weird) }), weird),
    options: fc.oneof(fc.record({ num_predict: fc.oneof(fc.integer(), weird) }), weird),
    system: weird,
  },
  { requiredKeys: [] },
);

/** `depth` nested arrays or objects around a small value. */
const deep = fc
  .tuple(fc.integer({ min: 50, max: 5_000 }), fc.boolean())
  .map(([depth, arrays]) => (arrays ? '['.repeat(depth) + '1' + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)));

export const jsonBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: inferenceObject.map((o) => JSON.stringify(o)) },
  fc.json({ maxDepth: 4 }),
  deep,
  deep.map((d) => `{"model":"mock-model","messages":[{"role":"user","content":${d}}]}`),
  fc.string({ maxLength: 200 }),
  inferenceObject.map((o) => JSON.stringify(o).slice(0, -1)),
  fc.constantFrom(
    '',
    '{',
    '{"model":',
    'null',
    '[]',
    '"str"',
    '1e99999',
    '{"model":"mock-model","messages":[]}\u0000',
    '\ufeff{}',
    '{"a":1,"a":2}',
  ),
);

export const INFERENCE_PATHS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/api/chat',
  '/api/generate',
  '/api/embed',
  '/api/embeddings',
] as const;

// ---- Portal bodies ----------------------------------------------------------------------------

const email = fc.oneof(fc.emailAddress(), fc.constantFrom('', 'a', '@', 'a@b', 'A@B.CO', 'x'.repeat(300) + '@example.com'), weird);
const password = fc.oneof(
  fc.string({ minLength: 0, maxLength: 80 }),
  fc.constantFrom('correct horse battery staple', 'password1234', 'x'.repeat(5_000)),
  weird,
);

export const portalBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ email, password }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  fc.record({ name: fc.oneof(fc.string({ maxLength: 100 }), weird) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.json({ maxDepth: 3 }),
  deep,
  fc.string({ maxLength: 100 }),
  fc.constantFrom('', '{', 'null', '[]', '{"email":"a@b.c","password":'),
);

export const PORTAL_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
] as const;
