import { asGatewayError, toWireBody, type ErrorFlavor } from '../errors.js';
import type { HeaderList, ResponseSink } from '../http/types.js';

const JSON_TYPE = ['content-type', 'application/json'] as const;

export function sendJson(sink: ResponseSink, status: number, value: unknown, headers: HeaderList = []): void {
  if (sink.finished || sink.headersSent) return;
  sink.send(status, [JSON_TYPE, ...headers], JSON.stringify(value));
}

/** Answer with an error in the route family's wire shape (OpenAI for /v1, Ollama for /api). */
export function sendError(sink: ResponseSink, error: unknown, flavor: ErrorFlavor, headers: HeaderList = []): void {
  if (sink.finished || sink.headersSent) return;
  const err = asGatewayError(error);
  sink.send(err.status, [JSON_TYPE, ...err.headers, ...headers], toWireBody(err, flavor));
}

export { flavorOf } from '../errors.js';
