import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

/**
 * The built SPA (frontend/dist), read once at boot and held in memory: a few hundred KiB, so
 * serving it costs a map lookup and one write, never a disk read, and no request path can
 * reach the file system (only the names found here exist). Compressible files are also kept
 * gzip- and brotli-encoded, chosen per request by Accept-Encoding. Those encodings are made on
 * libuv's threadpool when a file is first asked for (brotli at its best level costs ~150 ms of
 * CPU for the bundle): boot stays cheap, and the event loop never compresses.
 */
export interface StaticFile {
  /** URL path, e.g. `/assets/index-3f9a1c.js`. */
  readonly path: string;
  readonly type: string;
  readonly body: Buffer;
  /** Encodings smaller than the body, once made (null: not made yet, or not worth it). */
  gzip: Buffer | null;
  br: Buffer | null;
  /** Whether encodings are worth making for this file (type and size). */
  readonly compressible: boolean;
  /**
   * A hash of the bytes, weak (RFC 9110 §8.8.1): the identity, gzip and brotli representations
   * share it, which only a weak validator may do. If-None-Match compares weakly anyway.
   */
  readonly etag: string;
  readonly cacheControl: string;
}

export interface Site {
  readonly files: ReadonlyMap<string, StaticFile>;
  /** index.html: the answer for `/` and for the SPA's client-side routes. */
  readonly index: StaticFile;
}

/** JavaScript as text/javascript (RFC 9239); text types say their charset. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.svg', '.json', '.webmanifest', '.txt', '.map']);
/** Below this, compression saves less than the header costs. */
const MIN_COMPRESS_BYTES = 1024;
/** A runaway dist directory must not fill the heap. */
const MAX_TOTAL_BYTES = 64 * 1024 * 1024;

/**
 * Vite names everything under assets/ by content hash, so those never change under their name
 * and may be cached for a year (RFC 8246 `immutable`). index.html names the current hashes and
 * must never be served stale: not stored at all. The few unhashed files (favicon) for an hour.
 */
export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
export const CACHE_NONE = 'no-store';
export const CACHE_SHORT = 'public, max-age=3600';

function cacheControlFor(path: string): string {
  if (path === '/index.html') return CACHE_NONE;
  if (path.startsWith('/assets/')) return CACHE_IMMUTABLE;
  return CACHE_SHORT;
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);
const started = new WeakSet<StaticFile>();

/**
 * Starts making the file's encodings (once); until they exist it is served as it is. An
 * encoding that is not smaller than the body is dropped.
 */
export function prepareEncodings(file: StaticFile): void {
  if (!file.compressible || started.has(file)) return;
  started.add(file);
  const { body } = file;
  void Promise.all([
    gzipAsync(body, { level: 9 }),
    brotliAsync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
  ]).then(
    ([gz, br]) => {
      if (gz.length < body.length) file.gzip = gz;
      if (br.length < body.length) file.br = br;
    },
    // Compression cannot fail on a buffer; if it did, the file is simply served uncompressed.
    () => undefined,
  );
}

async function* walk(dir: string, prefix: string): AsyncGenerator<{ file: string; path: string }> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    // Dotfiles and symbolic links are never served: only what the build wrote, inside the directory.
    if (entry.name.startsWith('.') || entry.isSymbolicLink()) continue;
    const file = join(dir, entry.name);
    const path = `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* walk(file, path);
    else if (entry.isFile()) yield { file, path };
  }
}

/**
 * Reads a built SPA. Null when `dir` has no index.html (not built, or the data plane runs
 * without the SPA, as in the compose stack where nginx serves it).
 */
export async function loadSite(dir: string): Promise<Site | null> {
  const files = new Map<string, StaticFile>();
  let total = 0;
  try {
    for await (const { file, path } of walk(dir, '')) {
      const body = await readFile(file);
      total += body.length;
      if (total > MAX_TOTAL_BYTES) throw new Error(`${dir} holds more than ${MAX_TOTAL_BYTES} bytes; is it the SPA's build directory?`);
      const ext = extname(path).toLowerCase();
      const etag = `W/"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      const compressible = COMPRESSIBLE.has(ext) && body.length >= MIN_COMPRESS_BYTES;
      files.set(path, {
        path,
        type: TYPES[ext] ?? 'application/octet-stream',
        body,
        gzip: null,
        br: null,
        compressible,
        etag,
        cacheControl: cacheControlFor(path),
      });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const index = files.get('/index.html');
  return index ? { files, index } : null;
}
