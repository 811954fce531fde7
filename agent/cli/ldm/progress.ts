/**
 * The live line `ldm migrate-domain` keeps on a terminal while a migration runs:
 * phase, percent, a bar, transfer rate, time left, pass. Written here rather than
 * taken from a progress-bar package: one line, rewritten in place with a carriage
 * return and "erase to end of line", is all it needs.
 *
 * The figures come from list-migrations (agent/migration/stats.ts). The rate is
 * measured here from the bytes transferred between two polls, smoothed, so it is
 * known from the first pass on (the agent's own `mbps` exists only once a pass ended).
 */
import { ldmMessages as m } from '../../messages.ts';
import type { CliOutput } from '../io.ts';

/** What the line shows of one list-migrations row. */
export interface MigrationSnapshot {
  phase: string;
  status: string;
  progress: number;
  transferred: number;
  remaining: number;
  iterations: number;
}

const num = (text: string | undefined): number => {
  const n = Number.parseFloat(text ?? '');
  return Number.isFinite(n) ? n : 0;
};

export function snapshotOf(props: Record<string, string>): MigrationSnapshot {
  return {
    phase: props['phase'] ?? '',
    status: props['status'] ?? '',
    progress: Math.max(0, Math.min(100, Math.floor(num(props['progress'])))),
    transferred: num(props['transferred']),
    remaining: num(props['remaining']),
    iterations: num(props['iterations']),
  };
}

/** Bytes per second from successive (bytes, time) samples, smoothed so one slow poll does not make it jump. */
export class RateMeter {
  private last: { bytes: number; at: number } | undefined;
  private rate: number | undefined;

  add(bytes: number, atMs: number): void {
    const last = this.last;
    this.last = { bytes, at: atMs };
    if (!last || atMs - last.at < 50 || bytes < last.bytes) return;
    const now = ((bytes - last.bytes) * 1000) / (atMs - last.at);
    this.rate = this.rate === undefined ? now : 0.6 * this.rate + 0.4 * now;
  }

  get bytesPerSecond(): number | undefined {
    return this.rate;
  }
}

/** 12.3 MB/s, 850 KB/s (decimal units, as network rates are given). */
export function formatRate(bytesPerSecond: number | undefined): string {
  if (bytesPerSecond === undefined) return '-- B/s';
  const units = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let v = bytesPerSecond;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** 0:07, 12:30, 1:02:03; `--:--` when it cannot be told. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.ceil(seconds);
  const h = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

const BAR = 16;

/** The whole line for one snapshot. */
export function progressText(domain: string, snap: MigrationSnapshot, bytesPerSecond: number | undefined): string {
  const filled = Math.round((snap.progress / 100) * BAR);
  const bar = '#'.repeat(filled) + '.'.repeat(BAR - filled);
  // Time left only means something while pages are being copied.
  const eta = snap.phase === 'precopy' && bytesPerSecond ? snap.remaining / bytesPerSecond : snap.phase === 'done' ? 0 : undefined;
  // The pass in flight during pre-copy; the agent counts the passes it finished.
  const pass = snap.phase === 'precopy' ? snap.iterations + 1 : snap.iterations;
  return m.migrateProgress(domain, snap.phase, `${String(snap.progress).padStart(3)}%`, bar, formatRate(bytesPerSecond), formatEta(eta), pass);
}

/** 16.8 MB (decimal units, as formatRate). */
export function formatSize(bytes: number): string {
  return formatRate(bytes).replace('/s', '');
}

/** The last line, once the migration completed: what list-migrations says of it in the end. */
export function doneText(domain: string, props: Record<string, string>): string {
  const n = (k: string) => Number.parseFloat(props[k] ?? '') || 0;
  return m.migrateDone(domain, formatSize(n('transferred')), (n('total-time') / 1000).toFixed(1), n('iterations'), String(Math.round(n('downtime'))));
}

/** One line on a terminal, rewritten in place; never wider than the terminal (a wrapped line could not be rewritten). */
export class LiveLine {
  private shown = false;

  constructor(
    private readonly out: CliOutput,
    private readonly columns: () => number | undefined,
  ) {}

  show(text: string): void {
    // A pseudo-terminal without a size reports 0 columns.
    const width = this.columns() || 80;
    this.out.write(`\r${text.slice(0, Math.max(10, width - 1))}\x1b[K`);
    this.shown = true;
  }

  /** Leave the line as it is and go to the next. */
  finish(): void {
    if (this.shown) this.out.write('\n');
    this.shown = false;
  }

  /** Erase the line, so messages print on a clean one. */
  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
