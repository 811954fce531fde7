/**
 * The agent's migrations: starts source migrations for migrate-domain, receives
 * target migrations on the `migration` binary channel, cancels, lists (running ones
 * and the last finished), and settles sources in the error state with their target.
 *
 * Settling: a source whose handoff lost its confirmation (flag `e`) asks its target,
 * on a new channel, whether it runs the domain: `yes` -> the copy here is removed;
 * `no` -> the domain runs here again; `pending` -> asked again shortly. The service
 * tries every second at first, backing off to every 30 s while the target cannot be
 * reached, and logs what it decided. It needs a way to log in: the login of the
 * migration, kept in memory only (a password is never saved), or this agent's
 * certificate (-c migrations, also after a restart). cancel-operation settles at once
 * and, when the target cannot be asked, restores the domain on the operator's word,
 * as Oracle's manager does.
 */
import type { Socket } from 'node:net';
import type { CertPaths } from '../auth/certs.ts';
import type { MigrationTuning } from '../config.ts';
import type { Hypervisor } from '../hypervisor/hypervisor.ts';
import type { Logger } from '../log.ts';
import type { MigrationDesk, MigrationOrder } from '../manager/migrate.ts';
import { migrationMessages as mmsg, migrationModelMessages as mmm, migrationRunMessages as rm, objectMessages, refusalMessages } from '../messages.ts';
import type { Ldm } from '../model/ldm.ts';
import { openMigrationChannel, parseTarget, type TargetAddress, type TargetLogin } from './connect.ts';
import { Conversation, parseTargetMessage } from './conversation.ts';
import { SourceMigration, stepTimeouts, type MigrateRequest, type MigrationOutcome } from './source.ts';
import type { MigrationInfo } from './stats.ts';
import { TargetMigration } from './target.ts';

/** Finished migrations list-migrations keeps showing. */
const KEEP_FINISHED = 32;
const SETTLE_FIRST_MS = 1_000;
const SETTLE_MAX_MS = 30_000;
const SETTLE_TIMEOUT_MS = 10_000;

export { holdsFromEnv } from './holds.ts';

export interface MigrationServiceDeps {
  ldm: Ldm;
  hypervisor: Hypervisor;
  tuning: MigrationTuning;
  certs: CertPaths;
  /** This machine's host name (its certificate's CN). */
  hostname: string;
  log: Logger;
  holds?: ReadonlySet<string>;
  /** Override how the source reaches a target (tests of one module). */
  open?: (target: TargetAddress, login: TargetLogin) => Promise<Socket>;
}

export type CancelOutcome = { ok: true } | { ok: false; message: string };

type Settlement = { runs: 'yes' | 'no' | 'pending' } | { unreachable: string };

/** The manager's MigrationDesk (agent/manager/migrate.ts reads the requests and hands them here). */
export class MigrationService implements MigrationDesk {
  private readonly sources = new Map<string, SourceMigration>();
  private readonly targets = new Set<TargetMigration>();
  private readonly infos: MigrationInfo[] = [];
  /** Logins of sources in the error state, by migration id (memory only). */
  private readonly logins = new Map<string, TargetLogin>();
  /** Infos of sources in the error state, by domain name: ended when settled. */
  private readonly errorInfos = new Map<string, MigrationInfo>();
  private readonly settleAt = new Map<string, { at: number; delay: number; warned: boolean }>();
  private readonly settling = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly holds: ReadonlySet<string>;
  private closed = false;

  constructor(private readonly deps: MigrationServiceDeps) {
    this.log = deps.log.child('migration');
    this.holds = deps.holds ?? new Set();
  }

  /** Start settling sources left in the error state (by an earlier run, too). */
  start(): void {
    this.timer = setInterval(() => void this.settleDue(), SETTLE_FIRST_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    // Running sources roll back (the guest runs on here); targets see their channels close and clean up.
    const running = [...this.sources.values()];
    for (const s of running) s.cancel();
    for (const t of this.targets) t.stop();
    await Promise.all([...running.map((s) => s.done), ...[...this.targets].map((t) => t.done)]);
  }

  // ── source side ───────────────────────────────────────────────────────

  /** Migrate a domain; resolves when the migration has ended. */
  async migrate(order: MigrationOrder): Promise<MigrationOutcome> {
    const target = parseTarget(order.target);
    if (!target) return { ok: false, lines: [rm.badTarget(order.target), order.dryRun ? mmsg.wouldFail(order.domain) : mmsg.failed(order.domain)] };
    const request: MigrateRequest = { ...order, target };
    const running = this.sources.get(order.domain);
    if (running && !order.dryRun) return { ok: false, lines: [mmm.alreadyMigrating(order.domain, running.request.target.text), mmsg.failed(order.domain)] };
    const source = new SourceMigration(
      { ldm: this.deps.ldm, hypervisor: this.deps.hypervisor, tuning: this.deps.tuning, log: this.log, holds: this.holds, open: () => this.open(request.target, request.login) },
      request,
    );
    const key = request.domain;
    // One real migration per domain (refused above; the model refuses it too); dry runs are not registered.
    const owner = request.dryRun ? undefined : key;
    if (owner) this.sources.set(owner, source);
    this.remember(source.info);
    try {
      const outcome = await source.done;
      if (!outcome.ok && outcome.errorState) {
        this.logins.set(source.id, request.login);
        this.errorInfos.set(key, source.info);
        this.settleAt.set(key, { at: Date.now() + SETTLE_FIRST_MS, delay: SETTLE_FIRST_MS, warned: false });
      }
      return outcome;
    } finally {
      if (owner && this.sources.get(owner) === source) this.sources.delete(owner);
    }
  }

  /** Log in to a target and open the migration channel (deps.open in tests of one module). */
  private open(target: TargetAddress, login: TargetLogin, timeoutMs?: number): Promise<Socket> {
    if (this.deps.open) return this.deps.open(target, login);
    return openMigrationChannel({ target, login, certs: this.deps.certs, ownName: this.deps.hostname, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  }

  /**
   * cancel-operation migration NAME: a running migration rolls back; a source in the
   * error state is settled by asking the target, or with `force` (-f) restored on the
   * operator's word when the target cannot be asked.
   */
  async cancel(name: string, force = false): Promise<CancelOutcome> {
    const { ldm } = this.deps;
    const view = ldm.migrations.view(name);
    const running = this.sources.get(name);
    if (running) {
      const refusal = running.cancel();
      if (refusal) return { ok: false, message: refusal };
      await running.done;
      return { ok: true };
    }
    if (!view) return { ok: false, message: ldm.domain(name) ? objectMessages.noMigration(name) : refusalMessages.noSuchDomain(name) };
    if (view.role === 'target') return { ok: false, message: rm.cancelOnTarget(name, view.peer) };
    if (!view.error) return { ok: false, message: objectMessages.noMigration(name) };
    return this.settleNow(name, true, force);
  }

  /** Running migrations and the last finished ones, oldest first. */
  list(): MigrationInfo[] {
    return [...this.infos];
  }

  private remember(info: MigrationInfo): void {
    this.infos.push(info);
    // Drop the oldest finished ones beyond the bound; running ones always show.
    let excess = this.infos.filter((i) => i.finished).length - KEEP_FINISHED;
    for (let i = 0; i < this.infos.length && excess > 0; ) {
      if (this.infos[i]!.finished) {
        this.infos.splice(i, 1);
        excess--;
      } else i++;
    }
  }

  // ── target side ───────────────────────────────────────────────────────

  /** The `migration` binary channel's handler (XmppServerOptions.binaryChannels). */
  readonly channel = (socket: Socket, rest: Buffer, session: { principal: { name: string } }): void => {
    if (this.closed) return void socket.destroy();
    const target = new TargetMigration(
      {
        ldm: this.deps.ldm,
        hypervisor: this.deps.hypervisor,
        log: this.log,
        holds: this.holds,
        // Twice the peer bound: the source may be busy between two messages (reading the dirty log, a hold).
        idleMs: 2 * this.deps.tuning.peerTimeoutMs,
        stallMs: this.deps.tuning.peerTimeoutMs,
        register: (info) => this.remember(info),
        settleAnswer: (id, _name, uuid) => this.settleAnswer(id, uuid),
      },
      socket,
      rest,
      session.principal.name,
    );
    this.targets.add(target);
    void target.done.finally(() => this.targets.delete(target));
  };

  /** Whether this machine runs the domain a source asks about: yes, no, or not decided yet. */
  private settleAnswer(id: string, uuid: string): 'yes' | 'no' | 'pending' {
    // By uuid: the domain keeps it, while its name here may differ (rename on migration).
    const d = this.deps.ldm.snapshot.domains.find((x) => x.uuid.toLowerCase() === uuid.toLowerCase());
    if (!d) return 'no';
    if (d.migration) return d.migration.id === id ? 'pending' : 'no';
    return 'yes';
  }

  // ── settling the error state ──────────────────────────────────────────

  private async settleDue(): Promise<void> {
    const now = Date.now();
    for (const d of this.deps.ldm.snapshot.domains) {
      const r = d.migration;
      if (!r || r.role !== 'source' || !r.error || this.settling.has(d.name)) continue;
      const due = this.settleAt.get(d.name) ?? { at: now, delay: SETTLE_FIRST_MS, warned: false };
      this.settleAt.set(d.name, due);
      if (due.at > now) continue;
      if (!this.loginFor(d.name)) {
        if (!due.warned) this.log.warn(rm.settleNeedsCredentials(d.name, r.peer));
        due.warned = true;
        due.at = Number.POSITIVE_INFINITY;
        continue;
      }
      void this.settleNow(d.name, false);
    }
  }

  private loginFor(name: string): TargetLogin | undefined {
    const r = this.deps.ldm.domain(name)?.migration;
    if (!r) return undefined;
    return this.logins.get(r.id) ?? (r.certificate ? { kind: 'certificate' } : undefined);
  }

  /**
   * Ask the target about a source in the error state and act on the answer. `manual`
   * (cancel-operation) asks with this agent's certificate when no login was kept, and
   * refuses while the target cannot be asked: it may run the domain, and restoring it
   * here would run it twice. `force` (-f): restored on the operator's word.
   */
  private async settleNow(name: string, manual: boolean, force = false): Promise<CancelOutcome> {
    const { ldm } = this.deps;
    if (this.settling.has(name)) return { ok: false, message: rm.settleBusy(name) };
    const d = ldm.domain(name);
    const r = d?.migration;
    if (!d || !r || r.role !== 'source' || !r.error) return { ok: false, message: objectMessages.noMigration(name) };
    this.settling.add(name);
    try {
      const login = this.loginFor(name) ?? (manual ? ({ kind: 'certificate' } as const) : undefined);
      const answer: Settlement = login ? await this.ask(r.peer, login, r.id, name, d.uuid, manual ? stepTimeouts(this.deps.tuning.peerTimeoutMs).cancel : Math.min(SETTLE_TIMEOUT_MS, this.deps.tuning.peerTimeoutMs)) : { unreachable: rm.noLoginKept() };
      if ('runs' in answer && answer.runs === 'yes') {
        await this.completeErrorSource(name);
        this.log.warn(rm.settledCompleted(name, r.peer));
        return manual ? { ok: false, message: rm.settledRunsOnTarget(name, r.peer) } : { ok: true };
      }
      if ('runs' in answer && answer.runs === 'no') {
        await this.restoreErrorSource(name, rm.settledRestored(name, r.peer));
        this.log.warn(rm.settledRestored(name, r.peer));
        return { ok: true };
      }
      const detail = 'runs' in answer ? rm.targetStillResuming(r.peer) : answer.unreachable;
      if (manual && force && 'unreachable' in answer) {
        await this.restoreErrorSource(name, rm.settledManually(name, r.peer, detail));
        this.log.warn(rm.settledManually(name, r.peer, detail));
        return { ok: true };
      }
      if (manual && 'unreachable' in answer) {
        this.backOff(name, detail, r.peer, false);
        return { ok: false, message: rm.settleUnreachable(name, r.peer, detail) };
      }
      this.backOff(name, detail, r.peer, 'runs' in answer);
      return { ok: false, message: rm.settleFailed(name, r.peer, detail) };
    } catch (err) {
      this.log.error('settling failed', { domain: name, error: (err as Error).message });
      return { ok: false, message: rm.settleFailed(name, r.peer, (err as Error).message) };
    } finally {
      this.settling.delete(name);
    }
  }

  private backOff(name: string, detail: string, peer: string, pending: boolean): void {
    const due = this.settleAt.get(name) ?? { at: 0, delay: SETTLE_FIRST_MS, warned: false };
    // A target still resuming answers soon: ask again at the first interval.
    due.delay = pending ? SETTLE_FIRST_MS : Math.min(SETTLE_MAX_MS, due.delay * 2);
    due.at = Date.now() + due.delay;
    if (!due.warned || due.delay >= SETTLE_MAX_MS) this.log.warn(rm.settleFailed(name, peer, detail));
    due.warned = true;
    this.settleAt.set(name, due);
  }

  private async ask(peer: string, login: TargetLogin, id: string, name: string, uuid: string, ms: number): Promise<Settlement> {
    const target = parseTarget(peer);
    if (!target) return { unreachable: rm.badTarget(peer) };
    let conv: Conversation | undefined;
    try {
      conv = new Conversation(await this.open(target, login, ms));
      await conv.send({ t: 'settle', id, name, uuid });
      const answer = parseTargetMessage(await conv.receive(ms, 'the settle question', (what, s) => new Error(rm.peerTimeout(peer, what, s))));
      if (answer.t !== 'settled') return { unreachable: rm.protocolBroken(`"${answer.t}" where the settle answer belongs`) };
      return { runs: answer.runs };
    } catch (err) {
      return { unreachable: (err as Error).message };
    } finally {
      conv?.close();
    }
  }

  private async completeErrorSource(name: string): Promise<void> {
    await this.deps.ldm.migrations.completeSource(name);
    const guest = this.deps.hypervisor.guest(name);
    if (guest && guest.state !== 'destroyed') await guest.destroy();
    this.finishError(name, 'completed');
  }

  private async restoreErrorSource(name: string, why: string): Promise<void> {
    const guest = this.deps.hypervisor.guest(name);
    if (guest && guest.state === 'suspended') {
      guest.setThrottle(0);
      guest.disableDirtyLog();
      guest.resume();
    }
    // clearSource starts the guest again when it is gone (the agent restarted meanwhile).
    await this.deps.ldm.migrations.clearSource(name);
    this.finishError(name, 'failed', why);
  }

  private finishError(name: string, status: 'completed' | 'failed', why = ''): void {
    const info = this.errorInfos.get(name);
    this.errorInfos.delete(name);
    this.settleAt.delete(name);
    const id = info?.id;
    if (id) this.logins.delete(id);
    if (info) {
      info.markResumed();
      info.end(status, why);
    }
  }
}
