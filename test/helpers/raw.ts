/**
 * A raw byte-level XMPP peer for tests: writes exactly what a test says and
 * collects what the agent answers, so tests can speak like sloppy or hostile
 * clients (libldom, garbage, floods) over real sockets.
 */
import net from 'node:net';
import tls from 'node:tls';

export class RawPeer {
  text = '';
  closed = false;
  private socket: net.Socket;
  private readonly waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  /** `localAddress` picks the peer's own address, e.g. another 127.x to look like another host. */
  static async tcp(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawPeer> {
    return RawPeer.opened(net.connect({ port, host, localAddress }));
  }

  static async unix(path: string): Promise<RawPeer> {
    return RawPeer.opened(net.connect(path));
  }

  private static opened(socket: net.Socket): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString('utf8');
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters) w();
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Wait until what the agent sent (since `from`) matches; reject after `ms` with what arrived. */
  until(pattern: RegExp, ms = 5000, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const seen = this.text.slice(from);
        if (pattern.test(seen)) {
          done();
          resolve(seen);
        } else if (this.closed) {
          done();
          reject(new Error(`closed before ${pattern}; received: ${seen.slice(-500)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timeout waiting for ${pattern}; received: ${this.text.slice(from).slice(-500)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves true when the agent closed the connection within `ms`. */
  closedWithin(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Upgrade to TLS on the same socket (after <proceed/>). */
  async startTls(options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.text = '';
    this.listen(secure);
    return secure;
  }

  /** Stop reading: the agent's writes pile up in its buffers, as with a stuck client. */
  pause(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A stream header as a stock client writes it. */
export const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`;
export const STARTTLS = `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`;
export const plainAuth = (user: string, password: string) =>
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`;
export const LIST_DOMAIN = '<LDM_interface version="1.3"><cmd><action>list-domain</action><data version="3.0"/></cmd></LDM_interface>';

/** A raw TCP peer taken through STARTTLS, up to the SASL mechanisms (awaiting <auth>); its text cleared. */
export async function tlsRawPeer(port: number, localAddress?: string, tlsOptions: tls.ConnectionOptions = {}): Promise<RawPeer> {
  const p = await RawPeer.tcp(port, '127.0.0.1', localAddress);
  p.write(HEADER);
  await p.until(/<\/stream:features>/);
  p.write(STARTTLS);
  await p.until(/<proceed/);
  await p.startTls(tlsOptions);
  p.write(HEADER);
  await p.until(/<\/stream:features>/);
  p.text = '';
  return p;
}

/** Drive a raw peer to the online state with a password; returns the peer. */
export async function onlineRawPeer(port: number, user: string, password: string, localAddress?: string): Promise<RawPeer> {
  return completeLogin(await tlsRawPeer(port, localAddress), plainAuth(user, password));
}

/** Send a SASL `<auth>` on a peer from tlsRawPeer, then restart the stream: online, text cleared. */
export async function completeLogin(p: RawPeer, auth: string): Promise<RawPeer> {
  p.write(auth);
  await p.until(/<success/);
  p.text = '';
  p.write(HEADER);
  await p.until(/<\/stream:features>/);
  p.text = '';
  return p;
}
