/**
 * An incremental parser for `text/event-stream` (WHATWG HTML §9.2.6, "Parsing an event
 * stream"). Network chunks end anywhere: inside a UTF-8 sequence, a line, between the CR and
 * the LF of a CRLF, or between two events. `push` takes decoded text in pieces of any size and
 * emits each event once its blank line has arrived; `feedBytes` adds the UTF-8 decoding
 * (TextDecoder in streaming mode keeps a split multi-byte sequence until its end arrives).
 */

export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined with LF (a multi-line event keeps its lines). */
  data: string;
  /** The last event id seen so far (it persists across events, per the standard). */
  id: string;
}

export interface SseParser {
  /** Decoded text, in pieces of any size. */
  push(text: string): void;
  /** UTF-8 bytes from the network, in chunks of any size. */
  feedBytes(bytes: Uint8Array): void;
  /**
   * End of stream. An event without its terminating blank line is discarded, as the standard
   * says: a truncated stream must not deliver half an event.
   */
  end(): void;
}

export interface SseHandlers {
  onEvent(e: SseEvent): void;
  /** Lines starting with `:` (keep-alives); rarely useful beyond tests and diagnostics. */
  onComment?(text: string): void;
  /** A valid `retry:` field (milliseconds). */
  onRetry?(ms: number): void;
}

const LINE_END = /[\r\n]/g;

export function createSseParser(handlers: SseHandlers): SseParser {
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let started = false;
  // The previous piece ended with CR: an LF at the start of the next belongs to that line end.
  let afterCr = false;
  let dataLines: string[] = [];
  let eventType = '';
  let lastId = '';

  const dispatch = (): void => {
    // §9.2.6: an event with an empty data buffer is not dispatched (an `event:` line alone is dropped).
    if (dataLines.length === 0) {
      eventType = '';
      return;
    }
    const e: SseEvent = { event: eventType === '' ? 'message' : eventType, data: dataLines.join('\n'), id: lastId };
    dataLines = [];
    eventType = '';
    handlers.onEvent(e);
  };

  const line = (text: string): void => {
    if (text === '') return dispatch();
    if (text.charCodeAt(0) === 0x3a /* : */) {
      handlers.onComment?.(text.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case 'data':
        dataLines.push(value);
        break;
      case 'event':
        eventType = value;
        break;
      case 'id':
        // An id containing NUL is ignored (it could never be sent back in Last-Event-ID).
        if (!value.includes('\u0000')) lastId = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) handlers.onRetry?.(Number(value));
        break;
      default:
      // Unknown fields are ignored.
    }
  };

  const push = (piece: string): void => {
    let text = piece;
    if (!started && text.length > 0) {
      started = true;
      // One leading U+FEFF is a byte order mark, not content.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (afterCr && text.length > 0) {
      afterCr = false;
      if (text.charCodeAt(0) === 0x0a) text = text.slice(1);
    }
    buffer += text;
    let start = 0;
    LINE_END.lastIndex = 0;
    for (let m = LINE_END.exec(buffer); m !== null; m = LINE_END.exec(buffer)) {
      const at = m.index;
      let next = at + 1;
      if (buffer.charCodeAt(at) === 0x0d) {
        if (next < buffer.length) {
          if (buffer.charCodeAt(next) === 0x0a) next++;
        } else {
          afterCr = true;
        }
      }
      line(buffer.slice(start, at));
      start = next;
      LINE_END.lastIndex = next;
    }
    buffer = buffer.slice(start);
  };

  return {
    push,
    feedBytes: (bytes) => push(decoder.decode(bytes, { stream: true })),
    end() {
      push(decoder.decode());
      buffer = '';
      dataLines = [];
      eventType = '';
    },
  };
}
