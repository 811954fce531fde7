/**
 * Light XML-interface peers for the load tests: the real handshake over real
 * sockets (STARTTLS with the agent's certificate verified against its CA, then
 * SASL PLAIN or EXTERNAL; or the local socket, no login), then whole LDM documents handed
 * over as text, in arrival order. Hundreds of them run in one test process
 * beside the agent on a 2-core machine, so after the handshake they only cut
 * the stream at document ends: decoding every response with the project's
 * client (LdmClient) would cost the test process more CPU than the agent spends
 * answering, and the load tests compare text anyway (names, progress figures).
 * Each test keeps one LdmClient as a reference decoder beside these.
 */
import net from 'node:net';
import tls from 'node:tls';
import { HEADER, STARTTLS, plainAuth } from './raw.ts';

export interface LoadPeerOptions {
  /** TCP port on 127.0.0.1 (with `ca` and `login`), or `path` for the agent's local socket. */
  port?: number;
  path?: string;
  /** Source address on loopback (127.x.y.z): a peer looks like one host among several. */
  localAddress?: string;
  /** PEM of the agent's CA: its certificate is verified, name `localhost`. */
  ca?: string;
  /** SASL PLAIN with this login, or EXTERNAL with this client certificate (PEM; its CN names the user). */
  login?: { user: string; password: string } | { cert: string; key: string };
  /** Give up when not online within this time. */
  timeoutMs?: number;
}

const END_OF_STREAM = '</stream:stream>';
/** EXTERNAL with an empty authorization identity (RFC 6120: `=`): the certificate names the user. */
const EXTERNAL_AUTH = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`;

export class LoadPeer {
  /** Documents received once online (responses and events), in order. */
  received = 0;
  /** The agent ended the stream (its `</stream:stream>`) or the socket closed. */
  ended = false;
  /** A `<stream:error>` the agent sent, if any. */
  streamError: string | undefined;
  private buf = '';
  private online = false;
  private socket: net.Socket;
  private readonly wakers = new Set<() => void>();
  private listener: (doc: string) => void = () => {};

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  /** Connect and run the handshake; resolves once documents can be sent. */
  static async open(opts: LoadPeerOptions): Promise<LoadPeer> {
    const socket = opts.path ? net.connect(opts.path) : net.connect({ port: opts.port!, host: '127.0.0.1', localAddress: opts.localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const peer = new LoadPeer(socket);
    const ms = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => peer.socket.destroy(new Error(`not online within ${ms} ms; received: ${peer.buf.slice(-300)}`)), ms);
    try {
      await peer.handshake(opts);
      return peer;
    } catch (err) {
      peer.socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.buf += text;
      if (this.online) this.cut();
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.wakers) w();
  }

  /** During the handshake: wait until the text received matches, then drop it. */
  private expect(pattern: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pattern.test(this.buf)) {
          this.wakers.delete(check);
          this.buf = '';
          resolve();
        } else if (this.ended) {
          this.wakers.delete(check);
          reject(new Error(`closed before ${pattern}; received: ${this.buf.slice(-300)}`));
        }
      };
      this.wakers.add(check);
      check();
    });
  }

  private async handshake(opts: LoadPeerOptions): Promise<void> {
    this.socket.write(HEADER);
    await this.expect(/<\/stream:features>/);
    if (!opts.path) {
      this.socket.write(STARTTLS);
      await this.expect(/<proceed/);
      const plain = this.socket;
      // TLS reads the socket from now on; the plain side's close still ends the peer.
      plain.removeAllListeners('data');
      const login = opts.login!;
      const certificate = 'cert' in login ? { cert: login.cert, key: login.key } : {};
      const secure = tls.connect({ socket: plain, ca: opts.ca, servername: 'localhost', ...certificate });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', resolve);
        secure.once('error', reject);
      });
      this.socket = secure;
      this.attach(secure);
      secure.write(HEADER);
      await this.expect(/<\/stream:features>/);
      secure.write('cert' in login ? EXTERNAL_AUTH : plainAuth(login.user, login.password));
      await this.expect(/<success/);
      secure.write(HEADER);
      await this.expect(/<\/stream:features>/);
    }
    this.online = true;
  }

  /** Hand over each whole document in the buffer; note the end of the stream. */
  private cut(): void {
    for (;;) {
      const start = this.buf.indexOf('<LDM_');
      if (start < 0) break;
      const close = this.buf.startsWith('<LDM_event', start) ? '</LDM_event>' : '</LDM_interface>';
      const end = this.buf.indexOf(close, start);
      if (end < 0) {
        this.buf = this.buf.slice(start);
        return;
      }
      const doc = this.buf.slice(start, end + close.length);
      this.buf = this.buf.slice(end + close.length);
      this.received++;
      this.listener(doc);
    }
    const error = /<stream:error>[\s\S]*?<\/stream:error>/.exec(this.buf);
    if (error) this.streamError = error[0];
    if (this.buf.includes(END_OF_STREAM)) this.ended = true;
    // Only white space or a partial tag can be left over here; keep the tail for the next chunk.
    if (this.buf.length > 256) this.buf = this.buf.slice(-256);
  }

  /** Every document received from now on (responses and events), as text. */
  onDocument(listener: (doc: string) => void): void {
    this.listener = listener;
  }

  send(doc: string): void {
    this.socket.write(doc);
  }

  /** Resolves when `check` holds (tested after each chunk received), rejects after `ms`. */
  until(check: () => boolean, ms: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = () => {
        if (check()) {
          done();
          resolve();
        } else if (this.ended) {
          done();
          reject(new Error(`stream ended before ${what}${this.streamError ? `: ${this.streamError}` : ''}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(test);
      };
      this.wakers.add(test);
      test();
    });
  }

  /**
   * Close as a polite client does: `</stream:stream>`, then wait for the agent to end
   * its side and the socket to close (destroyed after `ms`). Everything the agent sent
   * before its end has been counted when this resolves.
   */
  async close(ms = 10_000): Promise<void> {
    const socket = this.socket;
    const closed = new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
    if (!socket.destroyed) socket.end(END_OF_STREAM);
    const timer = setTimeout(() => socket.destroy(), ms);
    await closed;
    clearTimeout(timer);
  }
}

/** Run `fn` over `items` with at most `limit` at once; results in order. */
export async function inParallel<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
