/**
 * The two agents' conversation on a migration channel: the control messages
 * (CONTROL frames, JSON) around the page stream (PAGES frames), and a wrapper of the
 * channel's socket that sends them and waits for the peer's, with a time bound.
 *
 *   source ─► target                          target ─► source
 *   offer    {id, offer}                      checked  {ok, plan} | {ok:false, check, reason}
 *   prepare                                   prepared | failed {reason}
 *   PAGES frames, progress {p}                (nothing: TCP paces the pages)
 *   pass     {n}                              passed   {n} (written: the pass's end to end)
 *   ping                                      pong     (a round trip on the empty channel)
 *   final    {runtime?, digest}               verified {digest} | mismatch {digest}
 *   resume                                    resumed  {runningMs} (the target runs the domain)
 *   cancel   {reason}                         (the channel closes)
 *   settle   {id, name, uuid}                 settled  {runs: yes | no | pending}
 *
 * The target treats everything it receives as hostile: parseSourceMessage checks
 * each message's shape before anything acts on it. The source checks the target's
 * answers the same way (parseTargetMessage). README.md here has the sequence.
 */
import type { Socket } from 'node:net';
import { ErrorCodes, LdmError } from '../errors.ts';
import type { GuestRuntime } from '../hypervisor/hypervisor.ts';
import { channelMessages, migrationRunMessages as rm } from '../messages.ts';
import { ChannelError, PageStreamDecoder, PageStreamEncoder, type DecoderOptions, type EncoderOptions, type PageBatch } from './channel.ts';
import type { CheckName, MigrationPlan } from './checks.ts';
import type { MigrationOffer } from './offer.ts';

export type SourceMessage =
  | { t: 'offer'; id: string; offer: MigrationOffer }
  | { t: 'prepare' }
  | { t: 'pass'; n: number }
  | { t: 'progress'; p: number }
  | { t: 'ping' }
  | { t: 'final'; digest: string; runtime?: GuestRuntime }
  | { t: 'resume' }
  | { t: 'cancel'; reason: string }
  | { t: 'settle'; id: string; name: string; uuid: string };

export type TargetMessage =
  | { t: 'checked'; ok: true; plan: MigrationPlan }
  | { t: 'checked'; ok: false; check: CheckName; reason: string }
  | { t: 'prepared' }
  | { t: 'passed'; n: number }
  | { t: 'pong' }
  | { t: 'failed'; reason: string }
  | { t: 'verified'; digest: string }
  | { t: 'mismatch'; digest: string }
  /** runningMs: how long the guest has run on the target when this is sent. */
  | { t: 'resumed'; runningMs: number }
  | { t: 'settled'; runs: 'yes' | 'no' | 'pending' };

/** The peer said something the conversation does not allow. */
export class ProtocolError extends LdmError {
  constructor(detail: string) {
    super(ErrorCodes.MIGRATION_PROTOCOL, rm.protocolBroken(detail));
    this.name = 'ProtocolError';
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const HEX64 = /^[0-9a-f]{16}$/;
/** Control messages a side may have sent ahead of the other's reading them: the conversation needs one or two. */
const MAX_INBOX = 16;

/** One message from a source, checked for shape (its content is checked where it is used). */
export function parseSourceMessage(v: unknown): SourceMessage {
  if (!isObject(v) || typeof v['t'] !== 'string') throw new ProtocolError('a control message is not an object with a type');
  const bad = (): never => {
    throw new ProtocolError(`malformed "${String(v['t']).slice(0, 40)}" message`);
  };
  switch (v['t']) {
    case 'offer':
      if (!isText(v['id'], 64) || !isObject(v['offer'])) bad();
      return { t: 'offer', id: v['id'] as string, offer: v['offer'] as unknown as MigrationOffer };
    case 'prepare':
    case 'resume':
    case 'ping':
      return { t: v['t'] };
    case 'pass':
      if (!Number.isSafeInteger(v['n'])) bad();
      return { t: 'pass', n: v['n'] as number };
    case 'progress':
      if (typeof v['p'] !== 'number' || !Number.isFinite(v['p'])) bad();
      return { t: 'progress', p: v['p'] as number };
    case 'final': {
      if (typeof v['digest'] !== 'string' || !HEX64.test(v['digest'])) bad();
      if (v['runtime'] !== undefined && !isObject(v['runtime'])) bad();
      const m: SourceMessage = { t: 'final', digest: v['digest'] as string };
      if (v['runtime'] !== undefined) m.runtime = v['runtime'] as unknown as GuestRuntime;
      return m;
    }
    case 'cancel':
      return { t: 'cancel', reason: isText(v['reason']) ? v['reason'] : 'cancelled' };
    case 'settle':
      if (!isText(v['id'], 64) || !isText(v['name'], 64) || !isText(v['uuid'], 64)) bad();
      return { t: 'settle', id: v['id'] as string, name: v['name'] as string, uuid: v['uuid'] as string };
    default:
      throw new ProtocolError(`unknown message type "${v['t'].slice(0, 40)}"`);
  }
}

/** One answer from a target, checked for shape. */
export function parseTargetMessage(v: unknown): TargetMessage {
  if (!isObject(v) || typeof v['t'] !== 'string') throw new ProtocolError('a control message is not an object with a type');
  const bad = (): never => {
    throw new ProtocolError(`malformed "${String(v['t']).slice(0, 40)}" message`);
  };
  switch (v['t']) {
    case 'checked':
      if (v['ok'] === true) {
        if (!isObject(v['plan'])) bad();
        return { t: 'checked', ok: true, plan: v['plan'] as unknown as MigrationPlan };
      }
      if (!isText(v['reason']) || !isText(v['check'], 64)) bad();
      return { t: 'checked', ok: false, check: v['check'] as CheckName, reason: v['reason'] as string };
    case 'prepared':
    case 'pong':
      return { t: v['t'] };
    case 'resumed': {
      const ms = v['runningMs'];
      return { t: 'resumed', runningMs: typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : 0 };
    }
    case 'passed':
      if (!Number.isSafeInteger(v['n'])) bad();
      return { t: 'passed', n: v['n'] as number };
    case 'failed':
      if (!isText(v['reason'])) bad();
      return { t: 'failed', reason: v['reason'] as string };
    case 'verified':
    case 'mismatch':
      if (typeof v['digest'] !== 'string' || !HEX64.test(v['digest'])) bad();
      return { t: v['t'], digest: v['digest'] as string };
    case 'settled':
      if (v['runs'] !== 'yes' && v['runs'] !== 'no' && v['runs'] !== 'pending') bad();
      return { t: 'settled', runs: v['runs'] as 'yes' | 'no' | 'pending' };
    default:
      throw new ProtocolError(`unknown message type "${v['t'].slice(0, 40)}"`);
  }
}

export interface ConversationOptions extends EncoderOptions {
  /** Give up once what is written stays untaken this long (watchWrites); none: never. */
  stallMs?: number;
}

/**
 * A migration channel's socket, both ways: `send` control messages and pages (the
 * encoder), `receive` the next control message within a time bound. Pages the peer
 * sends go to `onPages` (the target writes them into the guest, synchronously, so
 * TCP's window paces the sender). Once the socket closes or the peer breaks the
 * format, every receive rejects with that reason.
 */
export class Conversation {
  readonly encoder: PageStreamEncoder;
  /** Set guestPages once the receiving guest exists: a page index at or past it is refused. */
  readonly decoderOptions: DecoderOptions = { guestPages: 0 };
  onPages: ((batch: PageBatch) => void) | undefined;
  private readonly decoder: PageStreamDecoder;
  private readonly inbox: unknown[] = [];
  private waiter: { resolve: (v: unknown) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly closeListeners = new Set<(err: Error) => void>();

  constructor(
    readonly socket: Socket,
    rest: Buffer = Buffer.alloc(0),
    options: ConversationOptions = {},
  ) {
    this.encoder = new PageStreamEncoder(socket, options);
    if (options.stallMs !== undefined) this.watchWrites(options.stallMs);
    this.decoder = new PageStreamDecoder(this.decoderOptions, {
      pages: (batch) => {
        if (!this.onPages) throw new ChannelError(rm.protocolBroken('pages before the receiving domain exists'), 'page-index');
        this.onPages(batch);
      },
      control: (message) => this.deliver(message),
      end: () => this.fail(new ChannelError(channelMessages.closed(), undefined, ErrorCodes.MIGRATION_CHANNEL)),
    });
    socket.on('data', (chunk: Buffer) => this.input(chunk));
    socket.on('error', (err) => this.fail(new ChannelError(channelMessages.socketError(err.message), undefined, ErrorCodes.MIGRATION_CHANNEL)));
    socket.on('close', () => this.fail(new ChannelError(channelMessages.closed(), undefined, ErrorCodes.MIGRATION_CHANNEL)));
    if (rest.length > 0) this.input(rest);
    socket.resume();
  }

  /** Why the conversation is over, once it is. */
  get closedBy(): Error | undefined {
    return this.failure;
  }

  /** Called once when the conversation ends (socket closed, peer broke the format). */
  onClose(listener: (err: Error) => void): void {
    if (this.failure) listener(this.failure);
    else this.closeListeners.add(listener);
  }

  send(message: SourceMessage | TargetMessage): Promise<void> {
    return this.encoder.control(message);
  }

  /** The next control message, raw (the caller parses it for its side); rejects after `ms` or when the channel ends. */
  receive(ms: number, what: string, timeoutError: (what: string, seconds: number) => Error): Promise<unknown> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(timeoutError(what, Math.round(ms / 1000)));
      }, ms);
      this.waiter = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  /** Close the channel (idempotent). */
  close(): void {
    this.socket.destroy();
  }

  /**
   * Give the channel up when the peer takes none of what is written for `stallMs`: a link
   * that went down leaves TCP retransmitting for many minutes, and a peer may stop reading.
   * (Silence the other way is the receive timeouts' to bound.)
   */
  private watchWrites(stallMs: number): void {
    const timer = setInterval(() => {
      const e = this.encoder;
      if (this.failure || e.queuedBytes === 0 || performance.now() - e.lastTakenAt < stallMs) return;
      const err = new ChannelError(channelMessages.stalled(Math.round(stallMs / 1000)), undefined, ErrorCodes.MIGRATION_CHANNEL);
      e.fail(err);
      this.fail(err);
      this.socket.destroy();
    }, Math.max(50, Math.min(1000, stallMs / 4)));
    timer.unref();
    this.socket.once('close', () => clearInterval(timer));
  }

  private input(chunk: Buffer): void {
    if (this.failure) return;
    try {
      this.decoder.write(chunk);
    } catch (err) {
      // The encoder too: a write waiting when the socket goes must end with this reason, not the socket's.
      this.encoder.fail(err as Error);
      this.fail(err as Error);
      this.socket.destroy();
    }
  }

  private deliver(message: unknown): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve(message);
    } else if (this.inbox.length >= MAX_INBOX) {
      this.fail(new ProtocolError(`more than ${MAX_INBOX} control messages unanswered`));
      this.socket.destroy();
    } else this.inbox.push(message);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.waiter?.reject(err);
    this.waiter = undefined;
    for (const l of this.closeListeners) l(err);
    this.closeListeners.clear();
  }
}
