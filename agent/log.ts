/**
 * A small structured logger to stderr. Callers pass facts, never secrets:
 * no password, key or SASL payload is ever a field.
 *
 * Three promises, because log lines carry what unauthenticated peers send and
 * are written where an operator may pipe them:
 * - A line is one line of plain text: control characters (C0, DEL, C1) and the
 *   Unicode line and bidirectional-override characters are escaped (`\x1b`,
 *   `\u202e`) in the message, the component and every field, so a peer's SASL
 *   user name cannot move the cursor, recolour a terminal or forge a line.
 * - Writing never throws and never takes the agent down: a reader that went
 *   away (EPIPE) or a field that cannot be turned into text is dropped.
 * - Floods are summarized: the same message (level, component and text; the
 *   fields may differ) written more than `repeat.max` times in `repeat.intervalMs`
 *   is not written again in that interval; one line then says how many were left
 *   out. A component's instance suffix (`xmpp/conn:ID`) is not part of the key, so
 *   one message from many connections counts as one. The check is one Map lookup
 *   per line.
 */
import { logMessages } from './messages.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

/** Repeat suppression: at most `max` lines of one message per `intervalMs`; `max: Infinity` turns it off. */
export interface RepeatLimit {
  max: number;
  intervalMs: number;
}

/** Default: 10 lines of one message per 10 s, then one summary line for the rest of the interval. */
export const DEFAULT_REPEAT_LIMIT: Readonly<RepeatLimit> = { max: 10, intervalMs: 10_000 };

/** Distinct messages tracked at once; beyond this (expired ones swept first) new messages are written untracked. */
const MAX_TRACKED = 1024;

// Characters a terminal or a line-oriented reader would act on, rather than show.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_TEST = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every control, line-separator and bidi-override character written as an escape. */
export function escapeControls(text: string): string {
  return UNSAFE_TEST.test(text) ? text.replace(UNSAFE, escapeChar) : text;
}

function value(v: unknown): string {
  if (typeof v === 'string') {
    // Bare when it is one plain word; quoted when it has spaces, quotes or controls, so fields stay parseable.
    if (v !== '' && !/[\s"\\]/.test(v) && !UNSAFE_TEST.test(v)) return v;
    return `"${escapeControls(v.replace(/["\\]/g, '\\$&'))}"`;
  }
  let text: string | undefined;
  try {
    text = typeof v === 'bigint' ? String(v) : JSON.stringify(v);
  } catch {
    text = undefined; // a cycle, or a toJSON that throws
  }
  return escapeControls(text ?? String(v));
}

function format(fields: Record<string, unknown> | undefined): string {
  if (!fields) return '';
  let out = '';
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out += ` ${escapeControls(k)}=${value(v)}`;
  return out;
}

/** Per message key: lines written in the current interval, and those left out. */
interface Seen {
  start: number;
  count: number;
  dropped: number;
  level: LogLevel;
  component: string;
  msg: string;
}

/** The repeat counters one logger and all its children share. */
class RepeatFilter {
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | null = null;
  private lastSweep = -Infinity;

  constructor(
    readonly limit: RepeatLimit,
    private readonly emit: (level: LogLevel, component: string, msg: string, tail: string) => void,
    private readonly clock: () => number,
  ) {}

  /** True when this line may be written now. */
  admit(level: LogLevel, component: string, msg: string, now: number): boolean {
    const key = `${level}\u0000${component}\u0000${msg}`;
    let s = this.seen.get(key);
    if (s !== undefined && now - s.start >= this.limit.intervalMs) {
      this.summarize(s);
      s.start = now;
      s.count = 0;
    }
    if (s === undefined) {
      // A full table is swept at most ten times per interval, so many distinct messages stay cheap.
      if (this.seen.size >= MAX_TRACKED && now - this.lastSweep >= this.limit.intervalMs / 10) this.sweep(now);
      if (this.seen.size >= MAX_TRACKED) return true;
      s = { start: now, count: 0, dropped: 0, level, component, msg };
      this.seen.set(key, s);
    }
    if (s.count < this.limit.max) {
      s.count++;
      return true;
    }
    s.dropped++;
    // One timer for all keys, so a flood that stops still gets its summary line.
    if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), Math.max(1, s.start + this.limit.intervalMs - now));
      this.timer.unref();
    }
    return false;
  }

  private summarize(s: Seen): void {
    if (s.dropped === 0) return;
    const n = s.dropped;
    s.dropped = 0;
    this.emit(s.level, s.component, logMessages.repeated(s.msg, n, this.limit.intervalMs / 1000), '');
  }

  /** Summaries of finished intervals; forget keys idle for a whole interval. */
  private flush(): void {
    this.timer = null;
    const now = this.clock();
    let pending = Infinity;
    for (const [key, s] of this.seen) {
      const end = s.start + this.limit.intervalMs;
      if (now >= end) {
        this.summarize(s);
        this.seen.delete(key);
      } else if (s.dropped > 0) pending = Math.min(pending, end);
    }
    if (pending !== Infinity) {
      this.timer = setTimeout(() => this.flush(), Math.max(1, pending - now));
      this.timer.unref();
    }
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, s] of this.seen) {
      if (now - s.start >= this.limit.intervalMs) {
        this.summarize(s);
        this.seen.delete(key);
      }
    }
  }
}

/** Streams whose 'error' is already handled, and those found broken. */
const guarded = new WeakSet<NodeJS.WritableStream>();
const broken = new WeakSet<NodeJS.WritableStream>();

/**
 * A writer to `stream` (stdout, stderr) that never throws and never leaves an
 * 'error' unhandled: once the reader is gone (EPIPE, a closed terminal) the stream
 * is treated as broken and later writes are dropped. Without a listener, Node turns
 * such an error into an uncaught exception, and the agent would die of its own log.
 */
export function safeWriter(stream: NodeJS.WritableStream): (text: string) => void {
  if (!guarded.has(stream)) {
    guarded.add(stream);
    stream.on('error', () => broken.add(stream));
  }
  return (text) => {
    if (broken.has(stream)) return;
    try {
      stream.write(text);
    } catch {
      broken.add(stream);
    }
  };
}

export interface LoggerOptions {
  /** Repeat suppression (default DEFAULT_REPEAT_LIMIT). */
  repeat?: RepeatLimit;
  /** Clock for the repeat intervals (tests). */
  now?: () => number;
}

export function createLogger(
  level: LogLevel = (process.env.LDM_LOG_LEVEL as LogLevel | undefined) ?? 'info',
  component = 'ldm-agent',
  write: (line: string) => void = safeWriter(process.stderr),
  options: LoggerOptions = {},
): Logger {
  const min = ORDER[level] ?? ORDER.info;
  const now = options.now ?? Date.now;
  const emit = (l: LogLevel, c: string, msg: string, tail: string) => {
    try {
      write(`${new Date(now()).toISOString()} ${l} ${escapeControls(c)}: ${escapeControls(msg)}${tail}\n`);
    } catch {
      // A log line is never worth the agent: a writer that throws loses the line.
    }
  };
  const filter = new RepeatFilter(options.repeat ?? DEFAULT_REPEAT_LIMIT, emit, now);
  const make = (c: string): Logger => {
    // The key for repeats: the component without its instance (`conn:3f2a` -> `conn`).
    const family = c.replace(/:[^/:]*$/, '');
    const at = (l: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
      if (ORDER[l] < min) return;
      try {
        if (!filter.admit(l, family, msg, now())) return;
        emit(l, c, msg, format(fields));
      } catch {
        // A field whose getter throws, or a clock that does: the line is lost, the caller is not.
      }
    };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (sub) => make(`${c}/${sub}`) };
  };
  return make(component);
}

/** A logger that drops everything (tests of one module). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
