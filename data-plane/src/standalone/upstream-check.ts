import { parseUpstreamUrls, readUpstreamsFile } from '../proxy/upstreams.js';
import { httpStatus } from './probe.js';

/**
 * Whether anything answers at the configured model servers, for the start banner's hint (an
 * HTTP answer of any status counts: Ollama says "Ollama is running" at /, an OpenAI-compatible
 * server may say 404 or 401 there). A configuration the data plane would refuse is left to the
 * data plane to report, with its own message.
 */
export async function checkUpstreams(
  source: { DOWNSTREAM_AI_URLS: string; UPSTREAMS_FILE?: string | undefined },
  timeoutMs = 2_000,
): Promise<{ urls: { url: string; answers: boolean }[]; fromFile: string | null }> {
  let urls: string[];
  try {
    const defs = source.UPSTREAMS_FILE ? await readUpstreamsFile(source.UPSTREAMS_FILE) : parseUpstreamUrls(source.DOWNSTREAM_AI_URLS);
    urls = defs.map((d) => d.baseUrl.toString());
  } catch {
    urls = [];
  }
  const answers = await Promise.all(urls.map(async (url) => (await httpStatus(url, { timeoutMs })) !== null));
  return { urls: urls.map((url, i) => ({ url, answers: answers[i] === true })), fromFile: source.UPSTREAMS_FILE ?? null };
}
