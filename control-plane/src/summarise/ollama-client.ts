/**
 * A fetch for `new Ollama({ host, fetch })` that bounds every request with a timeout signal
 * (ollama-js passes its own AbortSignal for abort(); both are honoured).
 */
export function timeoutFetch(timeoutMs: number, base: typeof fetch = fetch): typeof fetch {
  return (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    return base(input, { ...init, signal });
  };
}
