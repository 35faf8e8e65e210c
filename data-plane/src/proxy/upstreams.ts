/**
 * Upstream definitions from `DOWNSTREAM_AI_URLS` (comma-separated base URLs) or an upstreams
 * JSON file (`[{ name, url, credential?, models?, weight? }]`).
 *
 * Errors name the bad entry (index and name) and the problem, never a credential: URLs are shown
 * without userinfo or query, and credential values are never echoed.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { UpstreamDefinition } from './types.js';

export class UpstreamConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamConfigError';
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** What a base URL must look like; returns a problem description or null. */
function urlProblem(url: URL): string | null {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (url.username !== '' || url.password !== '') {
    return 'must not embed credentials; use the "credential" field of the upstreams file';
  }
  // The client's query string is appended to the request, so the base cannot carry one.
  if (url.search !== '' || url.hash !== '') return 'must not have a query string or fragment';
  return null;
}

/** A URL as it may appear in an error message: no userinfo, no query, no fragment. */
function safeUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparsable)';
  }
}

const entrySchema = z.strictObject({
  name: z.string().regex(NAME, 'must be 1-64 characters of letters, digits, ".", "_", ":" or "-"'),
  url: z.string().min(1),
  credential: z.string().min(1, 'must not be empty (omit it instead)').nullable().optional(),
  models: z.array(z.string().min(1, 'model names must not be empty')).max(10_000).optional(),
  weight: z.number().int('must be an integer').min(1).max(1000).optional(),
});

const fileSchema = z.array(z.unknown()).min(1, 'must list at least one upstream');

function parseBaseUrl(rawUrl: string, where: string): URL {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UpstreamConfigError(`${where}: url is not a valid absolute URL`);
  }
  const problem = urlProblem(url);
  if (problem !== null) throw new UpstreamConfigError(`${where}: url ${safeUrl(rawUrl)} ${problem}`);
  return url;
}

/**
 * `DOWNSTREAM_AI_URLS`: comma-separated base URLs. Names are `host:port` (suffixed `#2`, … when
 * the same authority appears twice).
 */
export function parseUpstreamUrls(value: string, variable = 'DOWNSTREAM_AI_URLS'): UpstreamDefinition[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.every((p) => p === '')) throw new UpstreamConfigError(`${variable}: expected at least one http(s) base URL`);
  const defs: UpstreamDefinition[] = [];
  const seen = new Map<string, number>();
  parts.forEach((raw, i) => {
    if (raw === '') throw new UpstreamConfigError(`${variable} entry ${i + 1}: empty (check for a stray comma)`);
    const url = parseBaseUrl(raw, `${variable} entry ${i + 1}`);
    const authority = url.host;
    const n = (seen.get(authority) ?? 0) + 1;
    seen.set(authority, n);
    defs.push({ name: n === 1 ? authority : `${authority}#${n}`, baseUrl: url, credential: null, models: [], weight: 1 });
  });
  return defs;
}

/** An upstreams file's parsed JSON value → definitions. `source` names the file in errors. */
export function parseUpstreamsJson(value: unknown, source = 'upstreams file'): UpstreamDefinition[] {
  const list = fileSchema.safeParse(value);
  if (!list.success) throw new UpstreamConfigError(`${source}: ${firstIssue(list.error)}`);
  const defs: UpstreamDefinition[] = [];
  const names = new Set<string>();
  list.data.forEach((raw, i) => {
    const label = entryLabel(raw, i);
    const parsed = entrySchema.safeParse(raw);
    if (!parsed.success) throw new UpstreamConfigError(`${source} ${label}: ${firstIssue(parsed.error)}`);
    const e = parsed.data;
    if (names.has(e.name)) throw new UpstreamConfigError(`${source} ${label}: duplicate name`);
    names.add(e.name);
    const url = parseBaseUrl(e.url, `${source} ${label}`);
    defs.push({
      name: e.name,
      baseUrl: url,
      credential: e.credential ?? null,
      models: [...new Set(e.models ?? [])],
      weight: e.weight ?? 1,
    });
  });
  return defs;
}

/** Parses upstreams file text (JSON). */
export function parseUpstreamsFileText(text: string, source = 'upstreams file'): UpstreamDefinition[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes file content, which may include a credential: not shown.
    throw new UpstreamConfigError(`${source}: not valid JSON`);
  }
  return parseUpstreamsJson(value, source);
}

/** Reads and parses an upstreams file (boot time only). */
export async function readUpstreamsFile(path: string): Promise<UpstreamDefinition[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new UpstreamConfigError(`upstreams file ${path}: cannot be read (${code})`);
  }
  return parseUpstreamsFileText(text, `upstreams file ${path}`);
}

function entryLabel(raw: unknown, i: number): string {
  const name = typeof raw === 'object' && raw !== null ? (raw as { name?: unknown }).name : undefined;
  return typeof name === 'string' && NAME.test(name) ? `entry ${i + 1} ("${name}")` : `entry ${i + 1}`;
}

/** The first issue as `path: message`; zod's messages describe types and keys, never values. */
function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid';
  const path = issue.path.map(String).join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}
