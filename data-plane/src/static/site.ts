import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/**
 * The built SPA (frontend/dist), read once at boot and held in memory: a few hundred KiB, so
 * serving it costs a map lookup and one write, never a disk read, and no request path can
 * reach the file system (only the names found here exist). Compressible files are also kept
 * gzip- and brotli-encoded, chosen per request by Accept-Encoding.
 */
export interface StaticFile {
  /** URL path, e.g. `/assets/index-3f9a1c.js`. */
  readonly path: string;
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer | null;
  readonly br: Buffer | null;
  /** Strong validator: a hash of the bytes (RFC 9110 §8.8.3). */
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

/** Smaller encodings only: a compressed body that is not smaller is dropped. */
function compressed(body: Buffer, ext: string): { gzip: Buffer | null; br: Buffer | null } {
  if (!COMPRESSIBLE.has(ext) || body.length < MIN_COMPRESS_BYTES) return { gzip: null, br: null };
  const gzip = gzipSync(body, { level: 9 });
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  return { gzip: gzip.length < body.length ? gzip : null, br: br.length < body.length ? br : null };
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
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      files.set(path, { path, type: TYPES[ext] ?? 'application/octet-stream', body, ...compressed(body, ext), etag, cacheControl: cacheControlFor(path) });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const index = files.get('/index.html');
  return index ? { files, index } : null;
}
