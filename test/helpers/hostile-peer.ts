/**
 * One end of a migration channel driven by a test as a hostile peer would drive it:
 * the agent's own wire (agent/migration/conversation.ts: its encoder writes frames, its
 * decoder reads them) for the parts the peer plays straight, and raw bytes, lies, a
 * paused socket or silence for the parts it does not. Used by hostile-target.ts (a
 * target the real source agent migrates to) and hostile-source.ts (a source that
 * migrates to a real target agent).
 */
import type { Socket } from 'node:net';
import { FRAME_CONTROL, FRAME_HEADER } from '../../agent/migration/channel.ts';
import { Conversation } from '../../agent/migration/conversation.ts';

export class HostilePeer {
  readonly conv: Conversation;
  /** Pages the other side sent (a hostile target takes them all, whatever their index). */
  pages = 0;
  /** Resolves when the channel is closed, whoever closed it. */
  readonly closed: Promise<Error>;
  private readonly received: unknown[] = [];

  constructor(
    readonly socket: Socket,
    rest: Buffer = Buffer.alloc(0),
  ) {
    this.conv = new Conversation(socket, rest);
    this.conv.decoderOptions.guestPages = 2 ** 32 - 1;
    this.conv.onPages = (batch) => void (this.pages += batch.pages.length);
    this.closed = new Promise((resolve) => this.conv.onClose(resolve));
  }

  /** Every control message received so far, in order. */
  get messages(): readonly unknown[] {
    return this.received;
  }

  /** The next control message of the other side (parsed by nobody: a hostile peer takes what comes). */
  async next(ms = 20_000): Promise<Record<string, unknown>> {
    const m = (await this.conv.receive(ms, 'the next message', (what) => new Error(`hostile peer: no ${what} within ${ms} ms`))) as Record<string, unknown>;
    this.received.push(m);
    return m;
  }

  /** The next message of type `type`, skipping progress reports; fails on any other. */
  async expect(type: string, ms = 20_000): Promise<Record<string, unknown>> {
    for (;;) {
      const m = await this.next(ms);
      if (m['t'] === type) return m;
      if (m['t'] !== 'progress') throw new Error(`hostile peer: "${String(m['t'])}" where "${type}" was expected`);
    }
  }

  /** Send one control message, well-formed or not (anything JSON can carry). */
  say(message: Record<string, unknown>): Promise<void> {
    return this.conv.send(message as never);
  }

  /** Write raw bytes past the encoder (frames that lie, garbage). */
  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Stop reading: what the other side writes stays unread, in our socket and then in theirs. */
  stopReading(): void {
    this.socket.pause();
  }

  close(): void {
    this.conv.close();
  }
}

/** A frame header: type and the payload length it claims (lies welcome). */
export function frameHeader(type: number, length: number): Buffer {
  const b = Buffer.alloc(FRAME_HEADER);
  b[0] = type;
  b.writeUInt32BE(length >>> 0, 1);
  return b;
}

/** A CONTROL frame carrying `text` as it is (JSON or not). */
export function controlFrame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([frameHeader(FRAME_CONTROL, body.length), body]);
}
