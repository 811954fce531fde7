/**
 * The benchmarks' shared method: each operation in self-calibrated batches
 * (about 5 ms each, so clock reads stay out of the figure), warmed up, then
 * rounds of all operations interleaved so that they all see the same
 * (noisy) machine; the median of the rounds is reported.
 */

/** Every result is added here so that no timed work can be optimised away. */
let sink = 0;
export const consume = (x: number): void => {
  sink += x;
};
/** True when the timed code produced something (a sink of 0 means it was probably skipped). */
export const sunk = (): boolean => sink !== 0;

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function calibrate(fn: () => number): number {
  let n = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < n; i++) sink += fn();
    if (performance.now() - start >= 5 || n >= 1 << 20) return n;
    n *= 2;
  }
}

/** Operations per second over one round of about `ms`. */
function round(fn: () => number, batch: number, ms: number): number {
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < batch; i++) sink += fn();
    ops += batch;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

export interface Rounds {
  warmupMs: number;
  roundMs: number;
  rounds: number;
}

/** Operations per second of each function: medians of interleaved rounds. */
export function opsPerSecond(fns: (() => number)[], r: Rounds): number[] {
  const batches = fns.map(calibrate);
  fns.forEach((fn, i) => round(fn, batches[i]!, r.warmupMs));
  const rates: number[][] = fns.map(() => []);
  for (let k = 0; k < r.rounds; k++) fns.forEach((fn, i) => rates[i]!.push(round(fn, batches[i]!, r.roundMs)));
  return rates.map(median);
}
