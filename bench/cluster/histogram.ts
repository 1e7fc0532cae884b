/**
 * A latency histogram with log-linear buckets (like HdrHistogram with two
 * significant digits): exact below 128 µs, then each power of two of
 * microseconds is split into 64 equal buckets, so a percentile is off by less
 * than 1 %, and recording is one index computation, whatever the count.
 *
 * @module
 */

/** Values below this many microseconds get one bucket each. */
const LINEAR = 128;
/** Buckets per power of two above {@linkcode LINEAR}: each is at most 1/64 of its values wide. */
const HALF = 64;
/** The largest value kept apart, in microseconds (about 36 minutes); larger ones share its bucket. */
const TOP = 2 ** 31 - 1;
const BUCKETS = LINEAR + (31 - 7) * HALF;

/** Latencies in microseconds, bucketed. */
export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;
  #sum = 0;

  /** How many values were recorded. */
  get count(): number {
    return this.#count;
  }

  /** The largest value recorded, in milliseconds. */
  get maxMs(): number {
    return this.#max / 1000;
  }

  /** The mean, in milliseconds (0 when empty). */
  get meanMs(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count / 1000;
  }

  /**
   * Records one latency.
   *
   * @param ms The latency in milliseconds (as `performance.now()` differences are).
   */
  record(ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    this.#counts[bucketOf(us)]! += 1;
    this.#count++;
    this.#sum += us;
    if (us > this.#max) this.#max = us;
  }

  /**
   * Adds another histogram's values to this one.
   *
   * @param other The other histogram.
   */
  merge(other: Histogram): void {
    for (let i = 0; i < this.#counts.length; i++) this.#counts[i]! += other.#counts[i]!;
    this.#count += other.#count;
    this.#sum += other.#sum;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /**
   * The value below which `p` of the recorded values fall.
   *
   * @param p A fraction in [0, 1], e.g. 0.99.
   * @returns Milliseconds (the middle of the bucket), or NaN when empty.
   */
  percentileMs(p: number): number {
    if (this.#count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(p * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(middleOf(i), this.#max) / 1000;
    }
    return this.#max / 1000;
  }
}

/** The bucket of a value of at least 1 µs. */
function bucketOf(us: number): number {
  const v = Math.min(us, TOP);
  if (v < LINEAR) return v;
  const power = 31 - Math.clz32(v); // v in [2^power, 2^(power+1)), power >= 7
  return LINEAR + (power - 7) * HALF + ((v >>> (power - 6)) - HALF);
}

/** The middle value of a bucket, in microseconds. */
function middleOf(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const power = 7 + Math.floor((bucket - LINEAR) / HALF);
  const width = 2 ** (power - 6);
  const low = (((bucket - LINEAR) % HALF) + HALF) * width;
  return low + width / 2;
}
