import { describe, expect, it } from 'vitest';
import { encodeCommand, RedisReplyError, RespParser, type Reply } from './resp.js';

const wire = '*3\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:42\r\n$0\r\n\r\n' + '-WRONGTYPE bad\r\n' + '+OK\r\n' + '*0\r\n' + '$3\r\né!\r\n';

describe('RESP parser', () => {
  const expected: Reply[] = [['abc', null, [42, '']], new RedisReplyError('WRONGTYPE bad'), 'OK', [], 'é!'];
  it('parses every reply type', () => {
    const out: Reply[] = [];
    new RespParser((r) => out.push(r)).feed(Buffer.from(wire));
    expect(out).toEqual(expected);
  });
  it('gives the same replies however the bytes are split', () => {
    const bytes = Buffer.from(wire);
    for (let size = 1; size <= 7; size++) {
      const out: Reply[] = [];
      const p = new RespParser((r) => out.push(r));
      for (let i = 0; i < bytes.length; i += size) p.feed(bytes.subarray(i, i + size));
      expect(out).toEqual(expected);
    }
  });
  it('encodes commands with byte lengths', () => {
    expect(encodeCommand(['HMGET', 'k', 'é', 3])).toBe('*4\r\n$5\r\nHMGET\r\n$1\r\nk\r\n$2\r\né\r\n$1\r\n3\r\n');
  });
});
