/**
 * The migration page stream: length-framed binary frames on the TLS socket a
 * migration-channel switch handed over (README.md here has the wire format).
 *
 *   frame   = type u8 | payload length u32 BE | payload
 *   PAGES   (1): count u32 BE, then per page: index u32 BE | kind u8 (0 zero page,
 *                no bytes; 1 data, then PAGE_SIZE bytes)
 *   CONTROL (2): one UTF-8 JSON value (few and small: offer, pass ends, digest, runtime)
 *   END     (3): empty; nothing may follow it
 *
 * The encoder builds each batch in a reused frame buffer (readPageInto writes the
 * page straight into the frame, so nothing is allocated per page) and keeps the
 * bytes handed to the socket but not yet taken by it under a bound (64 MiB by
 * default): past it, it waits for the socket's write callbacks ('drain' included)
 * before adding more. A frame buffer goes back to the pool once the socket has
 * taken it, so the buffers in use are bounded the same way. By default frames are
 * also handed over one at a time (`maxInFlightBytes`, one batch): frames piled up in
 * a TLS socket's buffer are copied by Node into one write and encrypted in one go,
 * and the receiver waits meanwhile. Measured (bench/migration.ts, 128 MiB guest,
 * two processes): 0.72-0.78 of raw TLS one at a time, 0.55-0.62 with 64 MiB piled.
 *
 * The decoder reads frames incrementally, from any split of the input, and treats
 * the input as hostile: a frame longer than its bound is refused from its header,
 * before its payload is buffered; page indexes are checked against the guest,
 * kinds and lengths against the format; anything else is a ChannelError
 * (LDM_ERR_MIGRATION_FRAME) naming what is wrong, and the decoder reads no more.
 */
import type { Writable } from 'node:stream';
import { ErrorCodes, LdmError } from '../errors.ts';
import type { Guest, PageData } from '../hypervisor/hypervisor.ts';
import { PAGE_SIZE } from '../hypervisor/memory.ts';
import { channelMessages } from '../messages.ts';
import type { RunningDigest } from './digest.ts';

export const FRAME_PAGES = 1;
export const FRAME_CONTROL = 2;
export const FRAME_END = 3;
export const PAGE_ZERO = 0;
export const PAGE_DATA = 1;

/** type u8 + length u32. */
export const FRAME_HEADER = 5;
/** index u32 + kind u8. */
export const PAGE_HEADER = 5;
/** Largest frame payload a decoder accepts by default (a batch of 256 pages is about 2 MiB). */
export const DEFAULT_MAX_FRAME = 4 * 2 ** 20;
export const DEFAULT_PAGES_PER_BATCH = 256;
/** Bytes handed to the socket and not yet taken, beyond which the encoder waits (issue 8: 64 MiB). */
export const DEFAULT_MAX_QUEUED = 64 * 2 ** 20;
/** How long the sender fills batches before letting other work run. */
const SLICE_MS = 4;

export type FrameProblem =
  | 'unknown-type'
  | 'too-large'
  | 'page-index'
  | 'page-kind'
  | 'batch-length'
  | 'control'
  | 'end-length'
  | 'after-end'
  | 'truncated';

/** A frame that breaks the wire format (`problem` says how), or a channel that cannot go on. */
export class ChannelError extends LdmError {
  constructor(
    message: string,
    readonly problem?: FrameProblem,
    code: typeof ErrorCodes.MIGRATION_FRAME | typeof ErrorCodes.MIGRATION_CHANNEL = ErrorCodes.MIGRATION_FRAME,
  ) {
    super(code, message);
    this.name = 'ChannelError';
  }
}

/** Bytes a batch of `pages` entries takes at most (all data pages). */
export function batchFrameBytes(pages: number): number {
  return FRAME_HEADER + 4 + pages * (PAGE_HEADER + PAGE_SIZE);
}

export interface EncoderOptions {
  /** Bytes written to the socket and not yet taken by it before the encoder waits (default 64 MiB): the hard bound. */
  maxQueuedBytes?: number;
  /** Of those, how many may be in flight before the next frame is handed over (default: one batch frame). */
  maxInFlightBytes?: number;
  /** Pages per PAGES frame (default 256; its frame must fit the peer's frame bound). */
  pagesPerBatch?: number;
}

/** What one pass (or the whole stream so far) sent. */
export interface SendStats {
  pages: number;
  zeroPages: number;
  dataPages: number;
  /** Bytes of frames written (headers included). */
  bytes: number;
}

export class PageStreamEncoder {
  readonly maxQueuedBytes: number;
  private readonly maxInFlightBytes: number;
  readonly pagesPerBatch: number;
  /** Bytes handed to the socket and not yet taken by it. */
  queuedBytes = 0;
  /** The most `queuedBytes` has been (for tests and statistics). */
  peakQueuedBytes = 0;
  /** When the socket last took a frame, or the queue last began to fill (performance.now()): what the stall watchdog reads. */
  lastTakenAt = 0;
  readonly stats: SendStats = { pages: 0, zeroPages: 0, dataPages: 0, bytes: 0 };
  private readonly frameBytes: number;
  private readonly pool: Buffer[] = [];
  private frame: Buffer | undefined;
  private used = 0;
  private count = 0;
  private failure: Error | undefined;
  private readonly waiters: (() => void)[] = [];
  private readonly wake = (): void => {
    for (const w of this.waiters.splice(0)) w();
  };

  constructor(
    private readonly out: Writable,
    options: EncoderOptions = {},
  ) {
    this.pagesPerBatch = options.pagesPerBatch ?? DEFAULT_PAGES_PER_BATCH;
    this.frameBytes = batchFrameBytes(this.pagesPerBatch);
    this.maxQueuedBytes = Math.max(options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED, this.frameBytes);
    this.maxInFlightBytes = Math.min(this.maxQueuedBytes, options.maxInFlightBytes ?? this.frameBytes);
    out.on('drain', this.wake);
    out.once('close', () => this.fail(new ChannelError(channelMessages.closed(), undefined, ErrorCodes.MIGRATION_CHANNEL)));
    out.once('error', (err) => this.fail(new ChannelError(channelMessages.socketError(err.message), undefined, ErrorCodes.MIGRATION_CHANNEL)));
  }

  /**
   * Add page `index` of `guest` to the current batch, read straight into the frame,
   * and record it in `digest`. True when the batch is full: `await flush()` next.
   */
  addPage(guest: Guest, index: number, digest?: RunningDigest): boolean {
    if (!this.frame) {
      this.frame = this.pool.pop() ?? Buffer.allocUnsafe(this.frameBytes);
      this.used = FRAME_HEADER + 4;
      this.count = 0;
    }
    const frame = this.frame;
    const at = this.used;
    frame.writeUInt32BE(index, at);
    if (guest.readPageInto(index, frame, at + PAGE_HEADER)) {
      frame[at + 4] = PAGE_DATA;
      digest?.recordData(index, frame.subarray(at + PAGE_HEADER, at + PAGE_HEADER + PAGE_SIZE));
      this.used = at + PAGE_HEADER + PAGE_SIZE;
      this.stats.dataPages++;
    } else {
      frame[at + 4] = PAGE_ZERO;
      digest?.recordZero(index);
      this.used = at + PAGE_HEADER;
      this.stats.zeroPages++;
    }
    this.stats.pages++;
    return ++this.count >= this.pagesPerBatch;
  }

  /** Write the current batch, if any; resolves once there is room under the bound for another. */
  async flush(): Promise<void> {
    const frame = this.frame;
    if (!frame) return;
    this.frame = undefined;
    frame[0] = FRAME_PAGES;
    frame.writeUInt32BE(this.used - FRAME_HEADER, 1);
    frame.writeUInt32BE(this.count, FRAME_HEADER);
    await this.send(frame.subarray(0, this.used), frame);
  }

  /** Send one control message (after the pages added so far). */
  async control(message: unknown): Promise<void> {
    await this.flush();
    const json = Buffer.from(JSON.stringify(message), 'utf8');
    const frame = Buffer.allocUnsafe(FRAME_HEADER + json.length);
    frame[0] = FRAME_CONTROL;
    frame.writeUInt32BE(json.length, 1);
    json.copy(frame, FRAME_HEADER);
    await this.send(frame);
  }

  /** Send the END frame (after the pages added so far); the socket is left open. */
  async end(): Promise<void> {
    await this.flush();
    const frame = Buffer.alloc(FRAME_HEADER);
    frame[0] = FRAME_END;
    await this.send(frame);
  }

  /** Resolves once everything written has been taken by the socket. */
  async drained(): Promise<void> {
    while (this.queuedBytes > 0) await this.room(0);
    if (this.failure) throw this.failure;
  }

  private async send(bytes: Buffer, pooled?: Buffer): Promise<void> {
    await this.room(bytes.length);
    const n = bytes.length;
    if (this.queuedBytes === 0) this.lastTakenAt = performance.now();
    this.queuedBytes += n;
    if (this.queuedBytes > this.peakQueuedBytes) this.peakQueuedBytes = this.queuedBytes;
    this.stats.bytes += n;
    this.out.write(bytes, (err) => {
      this.queuedBytes -= n;
      this.lastTakenAt = performance.now();
      // The socket has taken (encrypted and handed on) the frame: its buffer may be reused.
      if (!err && pooled) this.pool.push(pooled);
      if (err) this.fail(new ChannelError(channelMessages.socketError(err.message), undefined, ErrorCodes.MIGRATION_CHANNEL));
      this.wake();
    });
  }

  /** Wait until `next` more bytes keep the queue within its bound. */
  private async room(next: number): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      // An empty queue takes any frame (a control message larger than the bound cannot wait forever).
      if (this.queuedBytes === 0 || (next > 0 && this.queuedBytes + next <= this.maxInFlightBytes)) return;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** End every wait with `err` (the channel is given up: its socket is destroyed next). */
  fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }
}

/**
 * Send the pages `pageIndexes` of `guest` (a pass: every touched page, or the dirty
 * log's answer), recording each in `digest`. Resolves once the last batch is handed
 * to the socket (not necessarily taken by it: `encoder.drained()`).
 */
export async function sendPass(guest: Guest, pageIndexes: ArrayLike<number>, encoder: PageStreamEncoder, digest?: RunningDigest): Promise<SendStats> {
  const before = { ...encoder.stats };
  let sliceStart = performance.now();
  for (let i = 0; i < pageIndexes.length; i++) {
    if (encoder.addPage(guest, pageIndexes[i]!, digest)) {
      await encoder.flush();
      // Reading and hashing pages is synchronous: other connections get their turn now and then.
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }
  await encoder.flush();
  const after = encoder.stats;
  return {
    pages: after.pages - before.pages,
    zeroPages: after.zeroPages - before.zeroPages,
    dataPages: after.dataPages - before.dataPages,
    bytes: after.bytes - before.bytes,
  };
}

/** A decoded PAGES frame. Page bytes are views of the decoder's buffer: valid only during the handler call. */
export interface PageBatch {
  pages: PageData[];
  /** Payload bytes of the frame. */
  bytes: number;
}

export interface DecoderHandlers {
  pages(batch: PageBatch): void;
  control(message: unknown): void;
  end(): void;
}

export interface DecoderOptions {
  /** Pages of the receiving guest: an index at or past it is refused. */
  guestPages: number;
  /** Largest payload accepted (default 4 MiB). */
  maxFrameBytes?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class PageStreamDecoder {
  private readonly maxFrameBytes: number;
  private readonly header = Buffer.alloc(FRAME_HEADER);
  private headerUsed = 0;
  /** The frame being assembled across reads, and how much of it is here. */
  private assembly: Buffer = Buffer.alloc(0);
  private assembled = 0;
  private type = 0;
  private length = -1;
  private ended = false;
  private failure: ChannelError | undefined;

  constructor(
    private readonly options: DecoderOptions,
    private readonly handlers: DecoderHandlers,
  ) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME;
  }

  /** True after the END frame. */
  get done(): boolean {
    return this.ended;
  }

  /** True when the input so far ends exactly at a frame boundary. */
  get atBoundary(): boolean {
    return this.headerUsed === 0 && this.length < 0;
  }

  /** Feed bytes as they come. Throws ChannelError at the first problem, and on every later call. */
  write(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    try {
      this.read(chunk);
    } catch (err) {
      if (err instanceof ChannelError) this.failure = err;
      throw err;
    }
  }

  /** The input ended: throws if it ended inside a frame. */
  finish(): void {
    if (this.failure) throw this.failure;
    if (!this.atBoundary) throw (this.failure = new ChannelError(channelMessages.truncated(this.headerUsed + this.assembled), 'truncated'));
  }

  private read(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.ended) throw new ChannelError(channelMessages.afterEnd(), 'after-end');
      if (this.length < 0) {
        // The header, possibly split across reads.
        const take = Math.min(FRAME_HEADER - this.headerUsed, chunk.length - off);
        chunk.copy(this.header, this.headerUsed, off, off + take);
        this.headerUsed += take;
        off += take;
        if (this.headerUsed < FRAME_HEADER) return;
        this.headerUsed = 0;
        this.startFrame(this.header[0]!, this.header.readUInt32BE(1));
        if (this.length === 0) this.endFrame(this.header, 0, 0);
        continue;
      }
      const need = this.length - this.assembled;
      if (this.assembled === 0 && chunk.length - off >= need) {
        // The whole payload is in this read: no copy.
        this.endFrame(chunk, off, need);
        off += need;
        continue;
      }
      const take = Math.min(need, chunk.length - off);
      chunk.copy(this.assembly, this.assembled, off, off + take);
      this.assembled += take;
      off += take;
      if (this.assembled === this.length) this.endFrame(this.assembly, 0, this.length);
    }
  }

  private startFrame(type: number, length: number): void {
    if (type !== FRAME_PAGES && type !== FRAME_CONTROL && type !== FRAME_END) throw new ChannelError(channelMessages.unknownFrame(type), 'unknown-type');
    if (length > this.maxFrameBytes) throw new ChannelError(channelMessages.frameTooLarge(length, this.maxFrameBytes), 'too-large');
    if (type === FRAME_END && length !== 0) throw new ChannelError(channelMessages.endNotEmpty(length), 'end-length');
    this.type = type;
    this.length = length;
    this.assembled = 0;
    if (this.assembly.length < length) this.assembly = Buffer.allocUnsafe(Math.max(length, Math.min(2 * this.assembly.length, this.maxFrameBytes)));
  }

  private endFrame(buf: Buffer, at: number, length: number): void {
    const type = this.type;
    this.length = -1;
    this.assembled = 0;
    if (type === FRAME_PAGES) this.handlers.pages(this.parsePages(buf, at, length));
    else if (type === FRAME_CONTROL) this.handlers.control(parseControl(buf.subarray(at, at + length)));
    else {
      this.ended = true;
      this.handlers.end();
    }
  }

  private parsePages(buf: Buffer, at: number, length: number): PageBatch {
    const end = at + length;
    if (length < 4) throw new ChannelError(channelMessages.batchLength(length, 0), 'batch-length');
    const count = buf.readUInt32BE(at);
    // Each entry takes at least its header: a count the payload cannot hold is refused before any work.
    if (count * PAGE_HEADER > length - 4) throw new ChannelError(channelMessages.batchLength(length, count), 'batch-length');
    const pages: PageData[] = new Array(count);
    const guestPages = this.options.guestPages;
    let p = at + 4;
    for (let i = 0; i < count; i++) {
      if (p + PAGE_HEADER > end) throw new ChannelError(channelMessages.batchLength(length, count), 'batch-length');
      const index = buf.readUInt32BE(p);
      const kind = buf[p + 4]!;
      p += PAGE_HEADER;
      if (index >= guestPages) throw new ChannelError(channelMessages.pageIndex(index, guestPages), 'page-index');
      if (kind === PAGE_ZERO) pages[i] = { index, bytes: null };
      else if (kind === PAGE_DATA) {
        if (p + PAGE_SIZE > end) throw new ChannelError(channelMessages.batchLength(length, count), 'batch-length');
        pages[i] = { index, bytes: buf.subarray(p, p + PAGE_SIZE) };
        p += PAGE_SIZE;
      } else throw new ChannelError(channelMessages.pageKind(kind, index), 'page-kind');
    }
    if (p !== end) throw new ChannelError(channelMessages.batchLength(length, count), 'batch-length');
    return { pages, bytes: length };
  }
}

function parseControl(bytes: Buffer): unknown {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (err) {
    throw new ChannelError(channelMessages.controlNotJson((err as Error).message), 'control');
  }
}

/** Write a received batch into the guest and record its pages in `digest` (the target's side of sendPass). */
export function applyBatch(guest: Guest, batch: PageBatch, digest?: RunningDigest): void {
  guest.writePages(batch.pages);
  if (digest) for (const p of batch.pages) digest.record(p.index, p.bytes);
}
