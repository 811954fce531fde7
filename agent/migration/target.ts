/**
 * The target side of one migration channel: answers the source's offer with the
 * checks, reserves the domain and creates the receiving guest, writes the pages it
 * is sent, proves its memory equals the source's, and resumes the domain when told.
 *
 * ```
 *  offer ──► checked ──prepare──► receiving ──final──► verified ──resume──► committing ──► done
 *    │ (settle: answered,   │ (-n: waits for        │ (cold: resume          (guest resumed,
 *    │  then closed)        │  the source to close) │  comes straight)        domain completed,
 *    │                      │                       │                          'resumed' sent)
 *    └──────────────────────┴───────────┬───────────┘
 *                                       ▼ cancel, channel closed, bad message, idle too long
 *                                    aborted: the guest is destroyed (memory scrubbed) and the
 *                                    reserved domain removed; nothing of it is left here
 * ```
 *
 * Once 'resume' has been received the domain is the target's (committing): the
 * channel closing afterwards undoes nothing, and the source learns the outcome
 * by settling (a `settle` question on a later channel: service.ts).
 *
 * Everything the source sends is checked first (conversation.ts parseSourceMessage,
 * checkOffer, the model's reserve step, the page decoder's bounds), and a message out
 * of order ends the migration.
 */
import type { Socket } from 'node:net';
import { ErrorCodes, LdmError } from '../errors.ts';
import type { Guest, GuestRuntime, Hypervisor } from '../hypervisor/hypervisor.ts';
import { simSettings } from '../hypervisor/variables.ts';
import type { Logger } from '../log.ts';
import { migrationMessages as mmsg, migrationRunMessages as rm } from '../messages.ts';
import type { Ldm } from '../model/ldm.ts';
import { applyBatch } from './channel.ts';
import { checkOffer, type MigrationPlan } from './checks.ts';
import { Conversation, parseSourceMessage, ProtocolError, type SourceMessage } from './conversation.ts';
import { RunningDigest } from './digest.ts';
import { holdUntil } from './holds.ts';
import type { MigrationOffer } from './offer.ts';
import { MigrationInfo } from './stats.ts';

/** How long the target waits for the source's next message before it gives up and cleans up. */
export const TARGET_IDLE_MS = 60_000;

export type TargetState = 'awaiting-offer' | 'checked' | 'receiving' | 'verified' | 'committing' | 'done' | 'aborted';

export interface TargetDeps {
  ldm: Ldm;
  hypervisor: Hypervisor;
  log: Logger;
  holds: ReadonlySet<string>;
  /** The service's registry: a migration shows in list-migrations from its offer on. */
  register(info: MigrationInfo): void;
  /** Answer a settle question about migration `id` of domain `name` (service.ts). */
  settleAnswer(id: string, name: string, uuid: string): 'yes' | 'no' | 'pending';
  idleMs?: number;
  /** Give the channel up when the source takes none of what is written for this long (none: never). */
  stallMs?: number;
}

/** The source called the migration off. */
class SourceCancelled extends LdmError {
  constructor(message: string) {
    super(ErrorCodes.MIGRATION_FAILED, message);
  }
}

export class TargetMigration {
  state: TargetState = 'awaiting-offer';
  info: MigrationInfo | undefined;
  private readonly conv: Conversation;
  private offer: MigrationOffer | undefined;
  private plan: MigrationPlan | undefined;
  private reserved = false;
  private guest: Guest | undefined;
  private readonly digest = new RunningDigest();
  private runtime: GuestRuntime | undefined;
  private received = { dataPages: 0, zeroPages: 0, bytes: 0 };
  readonly done: Promise<void>;

  constructor(
    private readonly deps: TargetDeps,
    socket: Socket,
    rest: Buffer,
    /** The login the source used (for logs). */
    private readonly who: string,
  ) {
    this.conv = new Conversation(socket, rest, deps.stallMs === undefined ? {} : { stallMs: deps.stallMs });
    this.done = this.serve();
  }

  /** The agent stops: end the conversation (what was received is removed, unless it is ours already). */
  stop(): void {
    this.conv.close();
  }

  private async serve(): Promise<void> {
    try {
      while (this.state !== 'done' && this.state !== 'aborted') {
        const raw = await this.conv.receive(this.deps.idleMs ?? TARGET_IDLE_MS, 'its next message', (_what, seconds) =>
          new LdmError(ErrorCodes.MIGRATION_FAILED, rm.sourceSilent(this.info?.peer ?? this.who, seconds)),
        );
        await this.on(parseSourceMessage(raw));
      }
    } catch (err) {
      await this.abort(err as Error);
    } finally {
      this.conv.close();
    }
  }

  private async on(m: SourceMessage): Promise<void> {
    const expect = (...states: TargetState[]) => {
      if (!states.includes(this.state)) throw new ProtocolError(`"${m.t}" in state ${this.state}`);
    };
    switch (m.t) {
      case 'offer':
        expect('awaiting-offer');
        return this.onOffer(m.id, m.offer);
      case 'settle': {
        expect('awaiting-offer');
        const runs = this.deps.settleAnswer(m.id, m.name, m.uuid);
        this.deps.log.info('migration settle question answered', { id: m.id, domain: m.name, runs, from: this.who });
        await this.conv.send({ t: 'settled', runs });
        await this.conv.encoder.drained();
        this.state = 'done';
        return;
      }
      case 'prepare':
        expect('checked');
        return this.onPrepare();
      case 'progress':
        // Sent beside the pages: one may arrive after the final pass; only pre-copy's counts.
        expect('receiving', 'verified');
        if (this.state === 'receiving' && this.guest) this.progress('precopy', m.p);
        return;
      case 'pass':
        expect('receiving');
        this.info!.iterations = m.n;
        // Every page before it has been written (pages are applied as they are decoded).
        await this.conv.send({ t: 'passed', n: m.n });
        return;
      case 'ping':
        expect('receiving');
        await this.conv.send({ t: 'pong' });
        return;
      case 'final':
        expect('receiving');
        return this.onFinal(m.digest, m.runtime);
      case 'resume':
        expect(this.guest ? 'verified' : 'receiving');
        return this.onResume();
      case 'cancel':
        throw new SourceCancelled(rm.cancelledBySource(m.reason));
    }
  }

  private async onOffer(id: string, offer: MigrationOffer): Promise<void> {
    const problem = offerProblem(offer);
    if (problem) throw new ProtocolError(problem);
    this.offer = offer;
    const info = (this.info = new MigrationInfo(id, 'target', offer.targetName, offer.machine.hostname, offer.dryRun === true));
    info.totalBytes = offer.domain.memory;
    this.deps.register(info);
    let result: ReturnType<typeof checkOffer>;
    try {
      result = checkOffer(this.deps.ldm, offer);
    } catch (err) {
      // An offer that passes the shape check but not the checks' assumptions: refused, not a crash.
      result = { ok: false, check: 'offer', reason: mmsg.incompleteOffer(offer.domain.name, (err as Error).message) };
    }
    if (!result.ok) {
      info.end('failed', result.reason);
      await this.conv.send({ t: 'checked', ok: false, check: result.check, reason: result.reason });
      await this.conv.encoder.drained();
      this.state = 'done';
      return;
    }
    this.plan = result.plan;
    await this.conv.send({ t: 'checked', ok: true, plan: result.plan });
    if (offer.dryRun) {
      info.end('completed');
      // The source closes the channel: reading on until then keeps its last bytes from being reset.
    }
    this.state = 'checked';
  }

  private async onPrepare(): Promise<void> {
    const offer = this.offer!;
    const info = this.info!;
    if (offer.dryRun) throw new ProtocolError('"prepare" after a dry run');
    const name = offer.targetName;
    const { ldm, hypervisor } = this.deps;
    info.phase = 'prepare';
    try {
      await ldm.migrations.reserveTarget({ domain: offer.domain, name, state: offer.domain.state, plan: this.plan!, peer: offer.machine.hostname, id: info.id });
      this.reserved = true;
      if (offer.guest) {
        const guest = hypervisor.create({ name, memoryBytes: offer.domain.memory, workload: simSettings(offer.domain.variables).workload });
        this.guest = guest;
        this.conv.decoderOptions.guestPages = guest.pages;
        this.conv.onPages = (batch) => {
          applyBatch(guest, batch, this.digest);
          this.received.bytes += batch.bytes;
          for (const p of batch.pages) p.bytes ? this.received.dataPages++ : this.received.zeroPages++;
          info.pages(this.received);
        };
        info.status = 'active';
        info.markPrecopy();
      }
    } catch (err) {
      return this.giveUp((err as Error).message);
    }
    this.progress(offer.guest ? 'precopy' : 'prepare', 5);
    this.state = 'receiving';
    await this.conv.send({ t: 'prepared' });
  }

  private async onFinal(digest: string, runtime: unknown): Promise<void> {
    const info = this.info!;
    if (!this.guest) throw new ProtocolError('"final" for a domain received cold');
    if (runtime === undefined) throw new ProtocolError('"final" without the guest\'s runtime state');
    info.status = 'device';
    info.iterations++;
    info.markPaused();
    this.progress('stopcopy', 90);
    this.runtime = runtime as GuestRuntime;
    const mine = this.digest.hex;
    if (mine !== digest) {
      info.error = rm.digestMismatch(digest, mine);
      this.deps.log.warn('migration digest mismatch', { id: info.id, domain: info.domain, source: digest, target: mine });
      await this.conv.send({ t: 'mismatch', digest: mine });
      return; // the source cancels
    }
    info.digest = mine;
    this.state = 'verified';
    await this.conv.send({ t: 'verified', digest: mine });
  }

  private async onResume(): Promise<void> {
    const offer = this.offer!;
    const info = this.info!;
    const name = offer.targetName;
    info.phase = 'handoff';
    this.progress('handoff', 98);
    await this.hold('handoff');
    this.state = 'committing';
    let resumedAt = performance.now();
    try {
      // Resumed before the commit is saved, so the save is not part of the guest's pause. Safe
      // because a simulated guest lives in this process: a crash before the save ends it too,
      // the restart removes the half-received domain, and the source (paused, in the error state
      // until it settles) resumes its copy. A backend whose guests outlive the agent would save first.
      if (this.guest) {
        this.guest.resume(this.runtime);
        resumedAt = performance.now();
      }
      await this.deps.ldm.migrations.completeTarget(name, this.guest ? 'active' : offer.domain.state);
    } catch (err) {
      // Not resumed after all: the source is told, keeps its domain, and nothing is left here.
      return this.giveUp((err as Error).message);
    }
    this.reserved = false;
    info.markResumed(performance.now() - resumedAt);
    info.end('completed');
    this.deps.log.info('migration received', { id: info.id, domain: name, from: info.peer, digest: info.digest || undefined });
    await this.hold('confirm');
    // How long the guest has run here already: the source counts the pause up to the resume, not to this answer.
    await this.conv.send({ t: 'resumed', runningMs: Math.max(0, performance.now() - resumedAt) });
    await this.conv.encoder.drained();
    this.state = 'done';
  }

  /** This side cannot go on (prepare or resume failed): undo, tell the source why, end. */
  private async giveUp(reason: string): Promise<void> {
    await this.undo();
    this.info!.end('failed', reason);
    this.state = 'done';
    await this.conv.send({ t: 'failed', reason });
    await this.conv.encoder.drained();
  }

  /** Cancel, a closed channel, a bad message: nothing received stays, unless the domain is ours already. */
  private async abort(err: Error): Promise<void> {
    const info = this.info;
    if (this.state === 'committing' || this.state === 'done') {
      // Committed: the source learns the outcome by settling. Nothing to undo.
      if (this.state === 'committing') this.deps.log.warn('migration channel lost after the resume', { id: info?.id, error: err.message });
      this.state = 'done';
      return;
    }
    this.state = 'aborted';
    await this.undo();
    if (info && !info.finished) {
      info.end(err instanceof SourceCancelled ? 'cancelled' : 'failed', err.message);
      this.deps.log.info('migration abandoned on the target', { id: info.id, domain: info.domain, reason: err.message });
    }
  }

  /** Destroy the receiving guest (scrubbing its memory) and remove the reserved domain. */
  private async undo(): Promise<void> {
    const guest = this.guest;
    this.guest = undefined;
    if (guest) await guest.destroy();
    if (this.reserved) {
      this.reserved = false;
      try {
        await this.deps.ldm.migrations.abortTarget(this.offer!.targetName);
      } catch (e) {
        this.deps.log.error('cannot remove the received domain', { domain: this.offer!.targetName, error: (e as Error).message });
      }
    }
  }

  private progress(phase: string, p: number): void {
    const info = this.info!;
    info.phase = phase as MigrationInfo['phase'];
    info.progress = Math.max(info.progress, Math.min(99, Math.floor(p)));
    if (!this.reserved) return;
    // One record phase for the whole reception: a phase change is saved, and saves inside the
    // guest's pause would lengthen it (a restart removes a half-received domain whatever its phase).
    this.deps.ldm.migrations.setProgress(info.domain, 'receive', info.progress).catch(() => {});
  }

  /** A test hold point (holds.ts): wait until released or the channel closes; before the commit a close ends the migration. */
  private async hold(point: string): Promise<void> {
    if (!this.deps.holds.has(point)) return;
    this.deps.log.info('migration held (test)', { point, domain: this.info?.domain });
    const released = await holdUntil(new Promise<void>((resolve) => this.conv.onClose(() => resolve())));
    if (!released && point === 'handoff') throw this.conv.closedBy!;
  }
}

/** What an offer must hold before the checks read it (they trust its shape). */
function offerProblem(o: MigrationOffer): string | undefined {
  const isObj = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(o.machine) || typeof o.machine.hostname !== 'string' || !isObj(o.machine.cpu)) return 'the offer has no source machine';
  if (!isObj(o.domain) || typeof o.domain.name !== 'string') return 'the offer has no domain';
  if (!['active', 'bound', 'inactive'].includes(o.domain.state)) return 'the offered domain has no valid state';
  if (typeof o.targetName !== 'string' || o.targetName.length === 0 || o.targetName.length > 64) return 'the offer has no target name';
  if (!Number.isSafeInteger(o.domain.memory) || o.domain.memory < 0) return 'the offered domain has no valid memory size';
  for (const key of ['vdisks', 'vnets', 'variables', 'io', 'master'] as const) if (!Array.isArray(o.domain[key])) return `the offered domain has no ${key} list`;
  if (o.guest !== undefined && (!isObj(o.guest) || !Number.isSafeInteger(o.guest.pages))) return 'the offered guest is malformed';
  return undefined;
}
