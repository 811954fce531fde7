/**
 * What a migration reports about itself, in the shape of QEMU's `query-migrate`
 * (migration.md, "Performance references"), for running and finished migrations
 * alike: list-migrations renders it (`properties`), the web app and `ldm` read it.
 *
 * Status names are QEMU's: `setup` (checks and prepare), `active` (pre-copy),
 * `device` (the guest is paused: stop-and-copy and the handoff), then `completed`,
 * `failed`, `cancelled`, or `error` (the source lost its handoff and waits to be
 * settled). Times are milliseconds; sizes are bytes.
 */
import { PAGE_SIZE } from '../hypervisor/memory.ts';

export type MigrationStatus = 'setup' | 'active' | 'device' | 'completed' | 'failed' | 'cancelled' | 'error';
export type MigrationPhase = 'checks' | 'prepare' | 'precopy' | 'stopcopy' | 'handoff' | 'done';

export class MigrationInfo {
  status: MigrationStatus = 'setup';
  phase: MigrationPhase = 'checks';
  /** Percent, never decreasing. */
  progress = 0;
  readonly startedAt = Date.now();
  private readonly start = performance.now();
  /** When pre-copy began (setup-time ends), when the guest was paused, when it ran again (on either machine). */
  private precopyAt: number | undefined;
  private pausedAt: number | undefined;
  private resumedAt: number | undefined;
  private endedAt: number | undefined;
  /** Remaining dirty bytes over the measured bandwidth when the guest was paused (ms). */
  expectedDowntimeMs = 0;
  iterations = 0;
  transferredBytes = 0;
  remainingBytes = 0;
  totalBytes = 0;
  zeroPages = 0;
  normalPages = 0;
  /** Pages the guest dirtied per second during the last pass. */
  dirtyPagesRate = 0;
  /** Throughput of the last pass, megabits per second. */
  mbps = 0;
  throttlePercentage = 0;
  /** Hex running digest of the guest memory, once both sides agreed on it. */
  digest = '';
  /** Why it failed, was cancelled or is in the error state. */
  error = '';

  constructor(
    readonly id: string,
    readonly role: 'source' | 'target',
    /** This machine's name for the domain. */
    public domain: string,
    /** The other agent (source: the target as given; target: the source's host name). */
    readonly peer: string,
    readonly dryRun = false,
  ) {}

  get finished(): boolean {
    return this.status === 'completed' || this.status === 'failed' || this.status === 'cancelled';
  }

  markPrecopy(): void {
    this.precopyAt ??= performance.now();
  }

  markPaused(): void {
    this.pausedAt ??= performance.now();
  }

  /** The guest runs again (`agoMs` ago: the target reports how long it has run when it confirms). */
  markResumed(agoMs = 0): void {
    if (this.pausedAt !== undefined) this.resumedAt ??= Math.max(this.pausedAt, performance.now() - agoMs);
  }

  end(status: 'completed' | 'failed' | 'cancelled' | 'error', error = ''): void {
    this.status = status;
    if (status !== 'error') {
      this.phase = 'done';
      this.endedAt ??= performance.now();
    }
    if (status === 'completed') this.progress = 100;
    if (error) this.error = error;
  }

  get totalTimeMs(): number {
    return (this.endedAt ?? performance.now()) - this.start;
  }

  get setupTimeMs(): number {
    return (this.precopyAt ?? this.endedAt ?? performance.now()) - this.start;
  }

  /** The guest's pause so far (or in all); 0 before it was paused. */
  get downtimeMs(): number {
    if (this.pausedAt === undefined) return 0;
    return (this.resumedAt ?? this.endedAt ?? performance.now()) - this.pausedAt;
  }

  /** Record what the page stream has sent or received so far. */
  pages(stats: { dataPages: number; zeroPages: number; bytes: number }): void {
    this.normalPages = stats.dataPages;
    this.zeroPages = stats.zeroPages;
    this.transferredBytes = stats.bytes;
  }

  /** GenericProperties of list-migrations (README: "list-migrations"). */
  properties(hostname: string): Record<string, string> {
    const ms = (n: number) => String(Math.round(n));
    const p: Record<string, string> = {
      id: this.id,
      role: this.role,
      peer: this.peer,
      host: hostname,
      status: this.status,
      phase: this.phase,
      progress: `${this.progress}%`,
      'dry-run': this.dryRun ? 'yes' : 'no',
      'start-time': new Date(this.startedAt).toISOString(),
      'total-time': ms(this.totalTimeMs),
      'setup-time': ms(this.setupTimeMs),
      downtime: ms(this.downtimeMs),
      'expected-downtime': ms(this.expectedDowntimeMs),
      iterations: String(this.iterations),
      transferred: String(this.transferredBytes),
      remaining: String(this.remainingBytes),
      total: String(this.totalBytes),
      'zero-pages': String(this.zeroPages),
      'normal-pages': String(this.normalPages),
      'page-size': String(PAGE_SIZE),
      'dirty-pages-rate': String(Math.round(this.dirtyPagesRate)),
      mbps: this.mbps.toFixed(1),
      'throttle-percentage': String(this.throttlePercentage),
    };
    if (this.digest) p['digest'] = this.digest;
    if (this.error) p['error'] = this.error;
    return p;
  }
}
