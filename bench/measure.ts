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

// ---------------------------------------------------------------------------------------------
// The recorder: each benchmark states its figures here where it prints them; bench/run.ts
// collects them into bench/results.json and the README's table.

/**
 * What a goal says, read from its text: a bound on the ratio (`<= 1.1x`, `>= 0.9`), a range
 * of the ratio (`0.8-1.2`), or a bound on the value itself in the figure's unit (`<= 10 ms`,
 * for figures the issues bound in absolute terms, such as a downtime).
 */
export type Goal =
  | { of: 'ratio' | 'value'; op: '<=' | '>='; limit: number }
  | { of: 'ratio'; op: 'range'; low: number; high: number };

export function parseGoal(text: string, unit: string): Goal {
  const bound = /^(<=|>=)\s*(\d+(?:\.\d+)?)\s*(x|\S.*)?$/.exec(text.trim());
  if (bound) {
    const [, op, limit, of] = bound;
    if (of !== undefined && of !== 'x' && of !== unit) throw new Error(`goal ${JSON.stringify(text)}: its unit is not the figure's (${unit})`);
    return { of: of === undefined || of === 'x' ? 'ratio' : 'value', op: op as '<=' | '>=', limit: Number(limit) };
  }
  const range = /^(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)x?$/.exec(text.trim());
  if (range && Number(range[1]) <= Number(range[2])) return { of: 'ratio', op: 'range', low: Number(range[1]), high: Number(range[2]) };
  throw new Error(`goal ${JSON.stringify(text)}: expected "<= N", ">= N" (ratio; "x" allowed), "<= N UNIT" (value) or "LOW-HIGH" (ratio)`);
}

/** Whether `value`/`ratio` meet the goal; null when what the goal bounds was not measured. */
export function meets(goal: Goal, value: number | null, ratio: number | null): boolean | null {
  const x = goal.of === 'value' ? value : ratio;
  if (x === null) return null;
  if (goal.op === 'range') return x >= goal.low && x <= goal.high;
  return goal.op === '<=' ? x <= goal.limit : x >= goal.limit;
}

export interface FigureInput {
  /** What was measured, with its workload; with the baseline, unique within its benchmark. */
  figure: string;
  value: number;
  /** The unit of value and baselineValue alike: `ms`, `µs`, `doc/s`, `MB/s`, ... */
  unit: string;
  /** What the baseline is (measured in the same run); null for a figure the issues bound in absolute terms only. */
  baseline: string | null;
  baselineValue: number | null;
  /** As the issues and bench/README.md state it; see parseGoal. */
  goal?: string;
}

/** One row of bench/results.json. ratio = value / baselineValue (for times above 1 is slower, for rates below 1 is). */
export interface FigureRecord {
  figure: string;
  value: number | null;
  unit: string;
  baseline: string | null;
  baselineValue: number | null;
  ratio: number | null;
  goal: string | null;
  met: boolean | null;
  benchmark: string;
}

const recorded: Omit<FigureRecord, 'benchmark'>[] = [];

const finite = (x: number | null): number | null => (x !== null && Number.isFinite(x) ? x : null);

/**
 * Record one figure of the running benchmark. A value that is not a finite number is kept
 * as null (JSON has no NaN) with a warning, so one bad figure does not lose a long run's
 * others; a goal that does not parse is a mistake in the benchmark and throws at once.
 */
export function figure(f: FigureInput): void {
  const goal = f.goal === undefined ? undefined : parseGoal(f.goal, f.unit);
  const value = finite(f.value);
  const baselineValue = f.baseline === null ? null : finite(f.baselineValue);
  if (value === null || (f.baseline !== null && baselineValue === null)) {
    console.warn(`bench: figure "${f.figure}": value ${f.value}, baseline ${f.baselineValue}: not a number, kept as null`);
  }
  // One value may stand beside several baselines (a row each); the pair names a row.
  if (recorded.some((r) => r.figure === f.figure && r.baseline === f.baseline)) throw new Error(`bench: figure "${f.figure}" beside "${f.baseline}" recorded twice`);
  const ratio = value !== null && baselineValue !== null && baselineValue > 0 ? value / baselineValue : null;
  recorded.push({
    figure: f.figure,
    value,
    unit: f.unit,
    baseline: f.baseline,
    baselineValue,
    ratio,
    goal: f.goal ?? null,
    met: goal === undefined ? null : meets(goal, value, ratio),
  });
}

/** The figures recorded since the last call, for bench/run.ts (which adds the benchmark's name). */
export function takeFigures(): Omit<FigureRecord, 'benchmark'>[] {
  return recorded.splice(0);
}
