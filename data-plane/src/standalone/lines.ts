import type { Readable } from 'node:stream';

/**
 * The first line of a child's output that `match` accepts. Reads beside whatever else consumes
 * the stream (a pipe to our stdout) and stops listening once found; unlike readline's close(),
 * it never pauses the stream, which would stall that pipe and, with it, the child's writes.
 */
export function lineMatching(stream: Readable, match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let pending = '';
    const done = (err: Error | null, line = '') => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: Buffer | string) => {
      pending += chunk.toString();
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        if (match(line)) return done(null, line);
      }
      // A child that writes megabytes without a newline is not going to announce anything.
      if (pending.length > 1 << 20) pending = '';
    };
    const onEnd = () => done(new Error(`${what} closed its output before it was ready`));
    const timer = setTimeout(() => done(new Error(`${what} did not start within ${timeoutMs} ms`)), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}
