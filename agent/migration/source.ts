/**
 * The source side of one migration: the five phases of migration.md, driven from
 * here, the target answering on the migration channel (conversation.ts).
 *
 * ```
 *  checks ──► prepare ──► precopy ──► stopcopy ──► handoff ──► completed
 *    │  (-n: completed      │ (cold: bound,   │          │  'resume' sent: committed
 *    │   after checks)      │  inactive ──────┼──────────┘
 *    │                      │                 │              ├─ 'resumed' ──► completed (source copy destroyed)
 *    └──────────┬───────────┴─────────────────┘              └─ no answer ──► error (flag e) ──► settled:
 *               ▼ a check fails, the target fails, the link drops, cancel      completed | restored
 *        failed | cancelled   (the target destroys its copy; the guest runs on here,
 *                              resumed if it was paused; the record is cleared)
 * ```
 *
 * Until 'resume' is sent nothing is final: any failure or a cancel rolls back, and
 * the target destroys what it received once told or once the channel closes. After
 * it, only the target's confirmation ends the migration; without one the source
 * domain enters the error state (model/migrations.ts markError) and the service
 * (service.ts) settles it with the target as soon as the two can talk.
 *
 * Pre-copy (phase 3): the first pass sends every touched page, each further pass
 * the pages the guest dirtied meanwhile (the hypervisor's dirty log, read into one
 * reused array). After each pass the remaining dirty bytes are weighed against the
 * bandwidth measured over the pass: once they fit in the downtime limit, or after
 * maxIterations passes, the guest is paused. A guest that dirties more than half of
 * what a pass sends, two passes running, is throttled (auto-converge: 20 %, then
 * +10 % each time, at most 99 %).
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { MigrationTuning } from '../config.ts';
import type { Guest, Hypervisor } from '../hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../hypervisor/memory.ts';
import type { Logger } from '../log.ts';
import { migrationMessages as mmsg, migrationModelMessages as mmm, migrationRunMessages as rm } from '../messages.ts';
import { ModelError, type Ldm } from '../model/ldm.ts';
import { ChannelError, DEFAULT_MAX_QUEUED } from './channel.ts';
import { buildOffer } from './checks.ts';
import { ConnectError, type TargetAddress, type TargetLogin } from './connect.ts';
import { Conversation, parseTargetMessage, ProtocolError, type TargetMessage } from './conversation.ts';
import { RunningDigest } from './digest.ts';
import { holdUntil } from './holds.ts';
import type { MigrationOffer } from './offer.ts';
import { MigrationInfo, type MigrationPhase } from './stats.ts';

/**
 * How long the target may take to answer each step, from migration.peerTimeoutMs
 * (seconds count in messages): preparing makes the target reserve and save, so twice
 * the bound; the cancel's goodbye is short whatever the bound.
 */
export function stepTimeouts(peerMs: number) {
  return { checks: peerMs, prepare: 2 * peerMs, verify: peerMs, handoff: peerMs, cancel: Math.min(5_000, peerMs) };
}
/** How often the listing's progress and the target's are brought up to date. */
const PROGRESS_MS = 100;
const TARGET_PROGRESS_MS = 250;
/** Reading pages and hashing them is synchronous: other work gets the loop this often. */
const SLICE_MS = 4;
/** Bandwidth is measured on passes of at least this many bytes; shorter ones are mostly latency. */
const MIN_MEASURED_BYTES = 4 * 2 ** 20;

export interface MigrateRequest {
  /** The domain here. */
  domain: string;
  /** Its name on the target. */
  targetName: string;
  target: TargetAddress;
  login: TargetLogin;
  dryRun: boolean;
  force: boolean;
}

export type MigrationOutcome =
  | { ok: true }
  /** One reason line, then `Domain Migration of LDom NAME failed` (or `would fail if attempted`). */
  | { ok: false; lines: [string, string]; errorState?: boolean };

export interface SourceDeps {
  ldm: Ldm;
  hypervisor: Hypervisor;
  tuning: MigrationTuning;
  log: Logger;
  /** Log in to the target and open the channel (connect.ts openMigrationChannel, bound to the request). */
  open(): Promise<Socket>;
  /** Test hold points (service.ts holdsFromEnv). */
  holds: ReadonlySet<string>;
}

/** A failure whose reason line is known. */
class Failure extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

class Cancelled extends Error {}

export class SourceMigration {
  readonly info: MigrationInfo;
  /** Settles with the outcome once the migration has ended (rolled back, completed, or in the error state). */
  readonly done: Promise<MigrationOutcome>;
  private conv: Conversation | undefined;
  private guest: Guest | undefined;
  private marked = false;
  /** 'resume' was sent: from here the migration cannot be cancelled or rolled back by the source alone. */
  private committed = false;
  private cancelReason: string | undefined;
  /** Rejects the wait in progress (guard): the migration waits for one thing at a time. */
  private interrupt: ((err: Error) => void) | undefined;
  private readonly digest = new RunningDigest();
  private dirtyBuffer = new Uint32Array(0);
  private lastProgressAt = 0;
  private lastTargetProgressAt = 0;
  /** The phase the domain's record carries (setPhase). */
  private recordedPhase: MigrationPhase = 'checks';
  /** A control message's round trip to the target and back (measureRoundTrip): two are part of every pause. */
  private roundTripMs = Number.POSITIVE_INFINITY;
  /** The saved mark that the handoff may begin (model markHandoff): awaited before 'resume' is sent. */
  private handoffSaved: Promise<void> | undefined;
  /** Moments of the pause (performance.now()), for the log. */
  private readonly pause = { paused: 0, lastPassSent: 0, verified: 0 };

  private readonly timeouts: ReturnType<typeof stepTimeouts>;

  constructor(
    private readonly deps: SourceDeps,
    readonly request: MigrateRequest,
    readonly id = randomUUID(),
  ) {
    this.timeouts = stepTimeouts(deps.tuning.peerTimeoutMs);
    this.info = new MigrationInfo(id, 'source', request.domain, request.target.text, request.dryRun);
    this.done = this.run();
  }

  /**
   * Ask the migration to stop and roll back; undefined when it will (await `done`),
   * or the reason it cannot: the handoff has begun.
   */
  cancel(): string | undefined {
    if (this.committed) return rm.tooLateToCancel(this.request.domain);
    if (this.cancelReason === undefined) {
      this.cancelReason = rm.cancelled(this.request.domain);
      this.interrupt?.(new Cancelled(this.cancelReason));
    }
    return undefined;
  }

  private async run(): Promise<MigrationOutcome> {
    try {
      return await this.steps();
    } catch (err) {
      return this.rollBack(err as Error);
    }
  }

  private async steps(): Promise<MigrationOutcome> {
    const { ldm } = this.deps;
    const r = this.request;
    const busy = ldm.migrations.view(r.domain);
    if (busy && !r.dryRun) throw new Failure(mmm.alreadyMigrating(r.domain, busy.peer));
    const offer = this.first(this.offer());
    this.setPhase('checks', 1);
    this.conv = await this.connect();
    await this.conv.send({ t: 'offer', id: this.id, offer });
    const checked = await this.answer('the checks', this.timeouts.checks);
    if (checked.t !== 'checked') throw new ProtocolError(`"${checked.t}" where the checks' answer belongs`);
    if (!checked.ok) throw new Failure(checked.reason);
    if (r.dryRun) {
      this.info.end('completed');
      this.conv.close();
      return { ok: true };
    }
    await this.hold('checks');

    // Phase 2 begins: flag `s`, and from now on nothing else may change the domain.
    await ldm.migrations.markSource(r.domain, r.target.text, this.id, r.login.kind === 'certificate');
    this.marked = true;
    // The target checked the offer: a domain changed meanwhile would not be what it planned for.
    if (JSON.stringify(this.first(this.offer()).domain) !== JSON.stringify(offer.domain)) throw new Failure(rm.changedDuringChecks(r.domain));

    this.setPhase('prepare', 5);
    await this.conv.send({ t: 'prepare' });
    const prepared = await this.answer('the prepare step', this.timeouts.prepare);
    if (prepared.t === 'failed') throw new Failure(rm.targetFailed(r.target.text, prepared.reason));
    if (prepared.t !== 'prepared') throw new ProtocolError(`"${prepared.t}" where the prepare step's answer belongs`);
    await this.hold('prepare');

    if (offer.guest) {
      const guest = this.deps.hypervisor.guest(r.domain);
      if (!guest || guest.state !== 'running') throw new Failure(mmsg.noGuest(r.domain));
      this.guest = guest;
      await this.precopy(guest);
      await this.stopAndCopy(guest);
    }
    return this.handoff();
  }

  private offer(): ReturnType<typeof buildOffer> {
    const r = this.request;
    return buildOffer(this.deps.ldm, this.deps.hypervisor, r.domain, r.targetName, { dryRun: r.dryRun, force: r.force });
  }

  private first(result: ReturnType<typeof buildOffer>): MigrationOffer {
    if (!result.ok) throw new Failure(result.reason);
    return result.offer;
  }

  private async connect(): Promise<Conversation> {
    const opening = this.deps.open();
    // A cancel while connecting: the socket that comes later is closed at once.
    opening.then((s) => this.cancelReason !== undefined && s.destroy(), () => {});
    const socket = await this.guard(opening);
    const secure = socket as Partial<TLSSocket>;
    this.deps.log.info('migration channel open', { domain: this.request.domain, target: this.request.target.text, id: this.id, tls: secure.getProtocol?.() ?? undefined, cipher: secure.getCipher?.()?.name });
    return new Conversation(socket, undefined, { maxQueuedBytes: DEFAULT_MAX_QUEUED, stallMs: this.deps.tuning.peerTimeoutMs });
  }

  // ── phase 3: pre-copy ─────────────────────────────────────────────────

  private async precopy(guest: Guest): Promise<void> {
    const { tuning } = this.deps;
    const info = this.info;
    info.status = 'active';
    info.totalBytes = guest.memoryBytes;
    info.markPrecopy();
    this.setPhase('precopy', 10);
    // On before the touched pages are listed: a page written in between is sent twice at worst, never missed.
    guest.enableDirtyLog();
    let pages: Uint32Array = guest.touchedIndexes();
    let bandwidth = 0;
    let hotPasses = 0;
    for (;;) {
      const started = performance.now();
      const pass = await this.sendPass(guest, pages, tuning.maxBandwidth ?? undefined);
      info.iterations++;
      // The target acknowledges the pass once it has written it: the bandwidth measured is the
      // whole pipeline's (socket buffers and the target's writing included), as in the pause.
      await this.conv!.send({ t: 'pass', n: info.iterations });
      const ack = await this.answer('the end of a pass', this.timeouts.verify);
      if (ack.t !== 'passed' || ack.n !== info.iterations) throw new ProtocolError(`"${ack.t}" where pass ${info.iterations}'s acknowledgement belongs`);
      const seconds = Math.max(performance.now() - started, 0.001) / 1000;
      const acked = performance.now();
      await this.measureRoundTrip();
      // QEMU's MIGRATION_PASS, as a log line: what each pass cost, where the time went.
      this.deps.log.info('migration pass', { domain: this.request.domain, pass: info.iterations, pages: pages.length, bytes: pass.bytes, sendMs: Math.round(pass.ms), ackMs: Math.round(acked - started - pass.ms), roundTripMs: Number(this.roundTripMs.toFixed(2)) });
      if (bandwidth === 0 || pass.bytes >= MIN_MEASURED_BYTES) bandwidth = pass.bytes / seconds;
      const dirty = guest.dirtyPageCount;
      info.mbps = (pass.bytes * 8) / seconds / 1e6;
      info.dirtyPagesRate = dirty / seconds;
      info.remainingBytes = dirty * PAGE_SIZE;
      // The last pages, then two round trips: the digest's verdict, the resume's confirmation.
      const expectedMs = (bandwidth > 0 ? ((dirty * PAGE_SIZE) / bandwidth) * 1000 : 0) + 2 * this.roundTripMs;
      info.expectedDowntimeMs = expectedMs;
      await this.hold(`precopy:${info.iterations}`);
      if (info.iterations === 1) await this.hold('precopy');
      if (expectedMs <= tuning.downtimeLimitMs || info.iterations >= tuning.maxIterations) return;
      // Auto-converge, as QEMU judges it: dirtied more than half of what the pass sent, twice in a row.
      if (tuning.autoConverge && dirty * PAGE_SIZE > pass.bytes / 2) {
        if (++hotPasses >= 2) {
          hotPasses = 0;
          const next = guest.throttle === 0 ? 0.2 : Math.min(0.99, guest.throttle + 0.1);
          guest.setThrottle(next);
          info.throttlePercentage = Math.round(next * 100);
        }
      } else hotPasses = 0;
      pages = this.readDirty(guest);
    }
  }

  /** The dirty log's pages, in the reused array (grown when the log holds more than ever before). */
  private readDirty(guest: Guest): Uint32Array {
    const n = guest.dirtyPageCount;
    if (this.dirtyBuffer.length < n) this.dirtyBuffer = new Uint32Array(Math.min(guest.pages, Math.max(n, Math.ceil(this.dirtyBuffer.length * 1.5))));
    return guest.readAndClearDirty(this.dirtyBuffer);
  }

  /**
   * Send `pages` as one pass (recorded in the running digest), paced to `maxBandwidth`
   * bytes/s when set; resolves once the socket has taken the last byte.
   */
  private async sendPass(guest: Guest, pages: Uint32Array, maxBandwidth?: number): Promise<{ bytes: number; ms: number }> {
    const enc = this.conv!.encoder;
    const start = performance.now();
    const firstBytes = enc.stats.bytes;
    let slice = start;
    const total = pages.length;
    for (let i = 0; i < total; i++) {
      if (!enc.addPage(guest, pages[i]!, this.digest)) continue;
      await this.guard(enc.flush());
      const now = performance.now();
      if (maxBandwidth) {
        const wait = start + ((enc.stats.bytes - firstBytes) / maxBandwidth) * 1000 - now;
        if (wait > 1) await this.guard(sleep(wait));
      } else if (now - slice > SLICE_MS) {
        await this.guard(new Promise((resolve) => setImmediate(resolve)));
        slice = performance.now();
      }
      this.passProgress(i + 1, total, guest);
    }
    await this.guard(enc.flush());
    await this.guard(enc.drained());
    this.info.pages(enc.stats);
    return { bytes: enc.stats.bytes - firstBytes, ms: performance.now() - start };
  }

  /** A round trip on the empty channel (after a pass was acknowledged); the smallest seen is kept. */
  private async measureRoundTrip(): Promise<void> {
    const start = performance.now();
    await this.conv!.send({ t: 'ping' });
    const pong = await this.answer('a ping', this.timeouts.verify);
    if (pong.t !== 'pong') throw new ProtocolError(`"${pong.t}" where the answer to a ping belongs`);
    this.roundTripMs = Math.min(this.roundTripMs, performance.now() - start);
  }

  /** Pre-copy's share of the progress: 10 % to 90 %, by pages sent against pages left (this pass and the log). */
  private passProgress(sent: number, passPages: number, guest: Guest): void {
    const now = performance.now();
    if (now - this.lastProgressAt < PROGRESS_MS || this.info.phase !== 'precopy') return;
    this.lastProgressAt = now;
    const info = this.info;
    info.pages(this.conv!.encoder.stats);
    const done = info.normalPages + info.zeroPages;
    const left = passPages - sent + guest.dirtyPageCount;
    info.remainingBytes = left * PAGE_SIZE;
    this.setPhase('precopy', 10 + (80 * done) / Math.max(1, done + left));
    if (now - this.lastTargetProgressAt >= TARGET_PROGRESS_MS) {
      this.lastTargetProgressAt = now;
      void this.conv!.send({ t: 'progress', p: info.progress }).catch(() => {});
    }
  }

  // ── phase 4: stop and copy ────────────────────────────────────────────

  private async stopAndCopy(guest: Guest): Promise<void> {
    const info = this.info;
    info.status = 'device';
    this.setPhase('stopcopy', 90);
    info.markPaused();
    this.pause.paused = performance.now();
    guest.suspend();
    // Saved while the last pages travel, not after: the save costs the pause nothing.
    this.markHandoff();
    await this.hold('stopcopy');
    const last = this.readDirty(guest);
    guest.disableDirtyLog();
    // No pacing inside the pause: the bandwidth limit is for the copy while the guest runs.
    await this.sendPass(guest, last);
    info.iterations++;
    info.remainingBytes = 0;
    this.pause.lastPassSent = performance.now();
    await this.conv!.send({ t: 'final', digest: this.digest.hex, runtime: guest.runtime() });
    const verdict = await this.answer('the memory digest', this.timeouts.verify);
    if (verdict.t === 'mismatch') throw new Failure(rm.digestMismatch(this.digest.hex, verdict.digest));
    if (verdict.t === 'failed') throw new Failure(rm.targetFailed(this.request.target.text, verdict.reason));
    if (verdict.t !== 'verified') throw new ProtocolError(`"${verdict.t}" where the digest's verdict belongs`);
    // The target's word is not enough: the digest it computed must be ours, or it does not hold this memory.
    if (verdict.digest !== this.digest.hex) throw new Failure(rm.digestMismatch(this.digest.hex, verdict.digest));
    info.digest = this.digest.hex;
    this.pause.verified = performance.now();
    this.setPhase('stopcopy', 97);
  }

  // ── phase 5: handoff ──────────────────────────────────────────────────

  private async handoff(): Promise<MigrationOutcome> {
    const { ldm, log } = this.deps;
    const r = this.request;
    const info = this.info;
    info.status = 'device';
    this.setPhase('handoff', 98);
    // Saved before the resume goes: from here a restart must ask the target, not run the domain again.
    await this.guard(this.markHandoff());
    this.committed = true;
    let answer: TargetMessage;
    try {
      await this.conv!.send({ t: 'resume' });
      answer = parseTargetMessage(await this.conv!.receive(this.timeouts.handoff, 'the resume', this.timeout));
    } catch (err) {
      // Sent, but not confirmed: the target may run the domain or not. Neither copy may run until that is known.
      const detail = (err as Error).message;
      await ldm.migrations.markError(r.domain);
      info.end('error', detail);
      log.warn(rm.errorState(r.domain, r.target.text, detail), { id: this.id });
      this.conv!.close();
      return { ok: false, lines: [rm.peerLost(r.target.text, 'the handoff', detail), mmsg.failed(r.domain)], errorState: true };
    }
    if (answer.t === 'failed') {
      // The target says it does not run the domain and has removed it: rolling back is safe.
      this.committed = false;
      throw new Failure(rm.targetFailed(r.target.text, answer.reason));
    }
    if (answer.t !== 'resumed') {
      this.committed = false;
      throw new ProtocolError(`"${answer.t}" where the resume's confirmation belongs`);
    }
    info.markResumed(answer.runningMs);
    if (this.pause.paused > 0) {
      const at = (t: number) => Math.round((t - this.pause.paused) * 10) / 10;
      // Where the pause went (ms after the suspend): what to look at when the downtime is longer than expected.
      log.info('migration pause', { domain: r.domain, lastPassSent: at(this.pause.lastPassSent), verified: at(this.pause.verified), confirmed: at(performance.now()), runningOnTarget: Math.round(answer.runningMs * 10) / 10, downtime: Math.round(info.downtimeMs * 10) / 10 });
    }
    await ldm.migrations.completeSource(r.domain);
    this.marked = false;
    this.conv!.close();
    info.end('completed');
    if (this.guest) {
      const scrub = await this.guest.destroy();
      log.info('migrated guest scrubbed', { domain: r.domain, pages: scrub.pages, scrubMs: Number(scrub.scrubMs.toFixed(2)) });
    }
    return { ok: true };
  }

  /** Start saving the handoff mark, once; the same promise after. */
  private markHandoff(): Promise<void> {
    if (!this.handoffSaved) {
      this.recordedPhase = 'handoff';
      this.handoffSaved = this.deps.ldm.migrations.markHandoff(this.request.domain);
      // Awaited in handoff(); a failure before then is the rollback's, not an unhandled rejection.
      this.handoffSaved.catch(() => {});
    }
    return this.handoffSaved;
  }

  // ── failure and cancel ────────────────────────────────────────────────

  /** Undo everything before the handoff: the target is told (or sees the channel close), the guest runs on here. */
  private async rollBack(err: Error): Promise<MigrationOutcome> {
    const { ldm, log } = this.deps;
    const r = this.request;
    const cancelled = err instanceof Cancelled;
    const reason = this.reasonOf(err);
    if (!(err instanceof Failure || err instanceof Cancelled || err instanceof ConnectError || err instanceof ModelError || err instanceof ChannelError || err instanceof ProtocolError)) {
      log.error('migration failed', { domain: r.domain, id: this.id, error: err.stack ?? String(err) });
    }
    await this.tellTarget(reason);
    const guest = this.guest ?? (this.marked ? this.deps.hypervisor.guest(r.domain) : undefined);
    if (guest && guest.state !== 'destroyed') {
      if (guest.state === 'suspended') guest.resume();
      this.info.markResumed();
      guest.setThrottle(0);
      guest.disableDirtyLog();
    }
    if (this.marked) {
      try {
        await ldm.migrations.clearSource(r.domain);
      } catch (e) {
        log.error('cannot clear the migration record', { domain: r.domain, error: (e as Error).message });
      }
      this.marked = false;
    }
    this.info.end(cancelled ? 'cancelled' : 'failed', reason);
    log.info(cancelled ? 'migration cancelled' : 'migration failed', { domain: r.domain, id: this.id, reason });
    return { ok: false, lines: [reason, r.dryRun ? mmsg.wouldFail(r.domain) : mmsg.failed(r.domain)] };
  }

  private reasonOf(err: Error): string {
    if (err instanceof Failure || err instanceof Cancelled) return err.message;
    if (err instanceof ConnectError || err instanceof ModelError || err instanceof ProtocolError) return err.message;
    if (err instanceof ChannelError) return rm.peerLost(this.request.target.text, phaseWords(this.info.phase), err.message);
    return rm.sourceFailed(err.message);
  }

  /** Tell the target to destroy its copy, and give it a moment to (its answer is the channel closing). */
  private async tellTarget(reason: string): Promise<void> {
    const conv = this.conv;
    if (!conv || conv.closedBy) return conv?.close();
    const closed = new Promise<void>((resolve) => conv.onClose(() => resolve()));
    const timer = setTimeout(() => conv.close(), this.timeouts.cancel);
    try {
      // The encoder may be stuck behind a full socket: the close timer ends that too.
      await conv.send({ t: 'cancel', reason }).catch(() => {});
      await closed;
    } finally {
      clearTimeout(timer);
      conv.close();
    }
  }

  // ── helpers ───────────────────────────────────────────────────────────

  /**
   * Wait for `p`, unless a cancel comes first. One slot, not a race against a cancel
   * promise: each race would leave a reaction on it until the end, one per batch sent.
   */
  private guard<T>(p: Promise<T>): Promise<T> {
    if (this.cancelReason !== undefined) return Promise.reject(new Cancelled(this.cancelReason));
    return new Promise<T>((resolve, reject) => {
      this.interrupt = reject;
      p.then(
        (v) => {
          this.interrupt = undefined;
          resolve(v);
        },
        (err: unknown) => {
          this.interrupt = undefined;
          reject(err);
        },
      );
    });
  }

  private async answer(what: string, ms: number): Promise<TargetMessage> {
    return parseTargetMessage(await this.guard(this.conv!.receive(ms, what, this.timeout)));
  }

  private readonly timeout = (what: string, seconds: number): Error => new Failure(rm.peerTimeout(this.request.target.text, what, seconds));

  /** A test hold point (holds.ts): wait here until released, cancelled, or the channel closes (which ends the migration). */
  private async hold(point: string): Promise<void> {
    if (!this.deps.holds.has(point)) return;
    this.deps.log.info('migration held (test)', { point, domain: this.request.domain });
    const conv = this.conv!;
    if (!(await this.guard(holdUntil(new Promise<void>((resolve) => conv.onClose(() => resolve())))))) throw conv.closedBy!;
  }

  private setPhase(phase: MigrationPhase, progress: number): void {
    const info = this.info;
    info.phase = phase;
    info.progress = Math.max(info.progress, Math.min(99, Math.floor(progress)));
    if (!this.marked) return;
    // The record's phase changes are saved. Inside the guest's pause only the handoff mark is
    // (markHandoff, overlapping the last pass): a restart needs nothing finer (model/migrations.ts settleAtStart).
    if (phase !== 'stopcopy' && phase !== 'handoff' && !this.handoffSaved) this.recordedPhase = phase;
    this.deps.ldm.migrations.setProgress(this.request.domain, this.recordedPhase, info.progress).catch(() => {
      // The record may be gone already (the migration ended meanwhile): nothing to show.
    });
  }
}

function phaseWords(phase: MigrationPhase): string {
  const words: Record<MigrationPhase, string> = {
    checks: 'the checks',
    prepare: 'the prepare step',
    precopy: 'the memory copy',
    stopcopy: 'the final copy',
    handoff: 'the handoff',
    done: 'the migration',
  };
  return words[phase];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
