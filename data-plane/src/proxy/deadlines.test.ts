import { describe, expect, it } from 'vitest';
import { Deadlines } from './deadlines.js';

describe('Deadlines', () => {
  it('a sweep expires exactly the due items, in order, once; a deleted item never expires', () => {
    let t = 0;
    const d = new Deadlines(100, () => t);
    const fired: string[] = [];
    const item = (name: string) => ({ expire: () => fired.push(name) });
    const [a, b, c] = [item('a'), item('b'), item('c')];
    d.add(a);
    t = 30;
    d.add(b);
    t = 60;
    d.add(c);
    d.delete(b);
    t = 99;
    d.sweep();
    expect(fired).toEqual([]);
    t = 160;
    d.sweep();
    expect(fired).toEqual(['a', 'c']);
    d.sweep();
    expect(fired).toEqual(['a', 'c']);
    expect(d.size).toBe(0);
  });

  it('the tick is a tenth of the timeout, within 10 ms and 1 s; the real timer fires a due item', async () => {
    expect(new Deadlines(600_000).tick).toBe(1000);
    expect(new Deadlines(50).tick).toBe(10);
    const d = new Deadlines(40);
    const fired = new Promise<number>((resolve) => {
      const start = performance.now();
      d.add({ expire: () => resolve(performance.now() - start) });
    });
    const after = await fired;
    expect(after).toBeGreaterThanOrEqual(39);
    expect(d.size).toBe(0);
  });
});
