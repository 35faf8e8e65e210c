import { Counter, Gauge, type LabelValues as PromLabels, type Metric, type Registry } from 'prom-client';

/**
 * Hot-path Prometheus metrics kept as plain numbers indexed by a small integer per label set (a
 * "slot", resolved once by the caller), and handed to prom-client only when the registry is read
 * (/metrics, /admin/metrics). prom-client hashes the labels of every inc() and observe(); here a
 * request pays an array increment, and the scrape pays the hashing once per label set.
 *
 * What a scrape shows is exactly what prom-client's own Counter and Histogram would show for the
 * same calls: same names, help, types, label sets in the order they were first used, values
 * (histogram sums add the same doubles in the same order), and bucket counts.
 */

type Labels<L extends string> = Record<L, string>;

interface MetricConfig<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

/** Interns label sets: the same values always give the same slot. */
class Slots<L extends string> {
  readonly labels: Array<Labels<L>> = [];
  readonly #ids = new Map<string, number>();
  readonly #names: readonly L[];

  constructor(names: readonly L[]) {
    this.#names = names;
  }

  slot(labels: Labels<L>): number {
    const id = this.#names.map((n) => labels[n]).join('\u0000');
    let slot = this.#ids.get(id);
    if (slot === undefined) {
      slot = this.labels.length;
      this.#ids.set(id, slot);
      this.labels.push(labels);
    }
    return slot;
  }
}

/**
 * A labelled counter. `metric` is the prom-client Counter registered under the name; its
 * collect() adds what was counted since the previous read, label set by label set in the order
 * they were first counted.
 */
export class SlotCounter<L extends string> {
  readonly metric: Counter<L>;
  readonly #slots: Slots<L>;
  readonly #counts: number[] = [];
  readonly #exported: number[] = [];
  /** Slots in the order they were first counted (prom-client lists series in that order). */
  readonly #order: number[] = [];

  constructor(config: MetricConfig<L>) {
    this.#slots = new Slots(config.labelNames);
    const sync = (): void => this.#sync();
    this.metric = new Counter<L>({
      ...config,
      collect() {
        sync();
      },
    });
  }

  slot(labels: Labels<L>): number {
    const slot = this.#slots.slot(labels);
    while (this.#counts.length <= slot) {
      this.#counts.push(-1);
      this.#exported.push(0);
    }
    return slot;
  }

  /** Adds `n` (default 1) to a slot from slot(). */
  inc(slot: number, n = 1): void {
    const c = this.#counts[slot]!;
    if (c < 0) {
      this.#order.push(slot);
      this.#counts[slot] = n;
    } else this.#counts[slot] = c + n;
  }

  #sync(): void {
    for (const slot of this.#order) {
      const c = this.#counts[slot]!;
      this.metric.inc(this.#slots.labels[slot]!, c - this.#exported[slot]!);
      this.#exported[slot] = c;
    }
  }
}

interface Series<L extends string> {
  labels: Labels<L>;
  /** Observations per bucket (not cumulative); the last bound's bucket is at bounds.length - 1. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

type LabelValues = Record<string, string | number>;
interface PromValue {
  labels: LabelValues;
  sharedLabels: LabelValues;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}
interface JsonValue {
  value: number;
  metricName: string;
  exemplar: null | undefined;
  labels: LabelValues;
}
interface HistogramData<V> {
  name: string;
  help: string;
  type: 'histogram';
  values: V[];
  aggregator: 'sum';
}

/**
 * A labelled histogram with prom-client Histogram semantics (a value lands in the first bucket
 * whose bound is >= the value; `+Inf` is the count), registered on the registries as a metric of
 * its own. A value that is not a finite number is not observed (prom-client throws instead).
 */
export class SlotHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly L[];
  readonly #bounds: readonly number[];
  readonly #slots: Slots<L>;
  #series: Array<Series<L> | undefined> = [];
  #order: number[] = [];

  constructor(config: MetricConfig<L> & { buckets: readonly number[] }) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames;
    this.#bounds = [...config.buckets];
    this.#slots = new Slots(config.labelNames);
    for (const r of config.registers) r.registerMetric(this as unknown as Metric);
  }

  slot(labels: Labels<L>): number {
    return this.#slots.slot(labels);
  }

  observe(slot: number, value: number): void {
    if (!Number.isFinite(value)) return;
    let s = this.#series[slot];
    if (s === undefined) {
      s = { labels: this.#slots.labels[slot]!, buckets: new Float64Array(this.#bounds.length), sum: 0, count: 0 };
      this.#series[slot] = s;
      this.#order.push(slot);
    }
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    if (i < bounds.length) s.buckets[i]!++;
    s.sum += value;
    s.count += 1;
  }

  reset(): void {
    this.#series = [];
    this.#order = [];
  }

  /** What prom-client's Histogram gives the registry for the text format. */
  getForPromString(): Promise<HistogramData<PromValue>> {
    const bucket = `${this.name}_bucket`;
    const values: PromValue[] = [];
    for (const slot of this.#order) {
      const s = this.#series[slot]!;
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.buckets[i]!;
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** What prom-client's Histogram gives for JSON: each value's labels merged with its series'. */
  async get(): Promise<HistogramData<JsonValue>> {
    const data = await this.getForPromString();
    const values = data.values.map(({ sharedLabels, labels, ...rest }): JsonValue => {
      for (const k of Object.keys(sharedLabels)) labels[k] = sharedLabels[k]!;
      return { ...rest, labels };
    });
    return { ...data, values };
  }
}

/**
 * A gauge without labels whose inc(), dec() and set() change a plain number; prom-client reads
 * it when the registry is read (collect). Called with labels, it behaves as prom-client's Gauge.
 */
export class PlainGauge extends Gauge {
  #value = 0;

  constructor(config: { name: string; help: string; registers: Registry[] }) {
    super({
      ...config,
      collect() {
        (this as PlainGauge).#sync();
      },
    });
  }

  #sync(): void {
    super.set(this.#value);
  }

  override inc(labels?: PromLabels<string> | number, value?: number): void {
    if (typeof labels === 'object') return super.inc(labels, value);
    this.#value += labels ?? 1;
  }

  override dec(labels?: PromLabels<string> | number, value?: number): void {
    if (typeof labels === 'object') return super.dec(labels, value);
    this.#value -= labels ?? 1;
  }

  override set(labels: PromLabels<string> | number, value?: number): void {
    if (typeof labels === 'object') return super.set(labels, value!);
    this.#value = labels;
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if (#value in this) this.#value = 0;
    super.reset();
  }
}
