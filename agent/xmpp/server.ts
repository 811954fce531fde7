/**
 * The XML interface service: a TCP listener (remote clients: STARTTLS
 * required, then SASL), the local Unix socket (no SASL, write role), and the
 * shared TLS context. Bounds the number of connections and slows down
 * repeated authentication failures.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import net, { type Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { EventBus } from '../events/bus.ts';
import type { Logger } from '../log.ts';
import type { Role } from '../auth/users.ts';
import type { Manager, Principal } from '../manager/manager.ts';
import { xmppMessages } from '../messages.ts';
import { DEFAULT_XML_LIMITS, type XmlLimits } from '../xml/limits.ts';
import { Connection, type ConnectionKind, type ConnectionTimeouts } from './connection.ts';
import { AuthThrottle, DEFAULT_THROTTLE, type ThrottleOptions } from './throttle.ts';
import * as wire from './wire.ts';

/** What the service needs of the user store. */
export interface UserDirectory {
  verify(name: string, password: string): Promise<{ name: string; role: Role } | null>;
  role(name: string): Promise<Role | null>;
}

export interface TlsMaterial {
  key: string;
  cert: string;
  /** CAs and peer certificates trusted for client-certificate login. */
  ca: string[];
  /**
   * SHA-256 fingerprints of the trusted certificates: a peer's own certificate
   * in trust/ is trusted by fingerprint, since OpenSSL only trusts it as a chain anchor.
   */
  fingerprints: Set<string>;
}

export interface XmppServerOptions {
  /** TCP address for remote clients; null for none. */
  listen: { host: string; port: number } | null;
  /** Path of the local Unix socket; null for none. */
  unixPath: string | null;
  /** Treat loopback TCP clients as local (no SASL), like Solaris libldom expects. */
  localTcp: boolean;
  domain: string;
  tls: TlsMaterial;
  users: UserDirectory;
  manager: Manager;
  bus: EventBus;
  log: Logger;
  limits?: XmlLimits;
  timeouts?: Partial<ConnectionTimeouts>;
  maxConnections?: number;
  maxOutboundBytes?: number;
  throttle?: ThrottleOptions;
}

export const DEFAULT_TIMEOUTS: ConnectionTimeouts = { handshakeMs: 10_000, idleMs: 30 * 60_000, partialDocumentMs: 30_000 };
export const DEFAULT_MAX_CONNECTIONS = 256;

const isLoopback = (address: string | undefined) =>
  !!address && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));

export class XmppServer {
  private readonly connections = new Set<Connection>();
  private readonly tlsServer: tls.Server;
  private readonly pendingTls = new Map<Socket, (s: TLSSocket) => void>();
  private readonly throttle: AuthThrottle;
  private tcp: net.Server | undefined;
  private unix: net.Server | undefined;
  private readonly log: Logger;

  constructor(private readonly options: XmppServerOptions) {
    this.log = options.log.child('xmpp');
    this.throttle = new AuthThrottle(options.throttle ?? DEFAULT_THROTTLE);
    this.tlsServer = tls.createServer({
      key: options.tls.key,
      cert: options.tls.cert,
      ca: options.tls.ca,
      minVersion: 'TLSv1.2',
      // Ask for a certificate (EXTERNAL login) without requiring one (PLAIN login);
      // a certificate that is presented but untrusted is refused by the connection.
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: (options.timeouts?.handshakeMs ?? DEFAULT_TIMEOUTS.handshakeMs),
    });
    // The TLS socket keeps its plain socket as `_parent`: the only link back to our connection.
    const parentOf = (s: TLSSocket) => (s as unknown as { _parent?: Socket })._parent;
    this.tlsServer.on('secureConnection', (s: TLSSocket) => {
      const raw = parentOf(s);
      const done = raw && this.pendingTls.get(raw);
      if (!done) return void s.destroy();
      this.pendingTls.delete(raw);
      done(s);
    });
    this.tlsServer.on('tlsClientError', (err: Error, s: TLSSocket) => {
      const raw = parentOf(s);
      this.log.info('TLS handshake failed', { address: raw?.remoteAddress, error: err.message });
      if (raw) {
        this.pendingTls.delete(raw);
        raw.destroy();
      }
    });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async start(): Promise<void> {
    const { listen, unixPath } = this.options;
    if (listen) {
      this.tcp = net.createServer((s) => this.accept(s, this.options.localTcp && isLoopback(s.remoteAddress) ? 'local-tcp' : 'remote'));
      await listenOn(this.tcp, (cb) => this.tcp!.listen(listen.port, listen.host, cb));
    }
    if (unixPath) {
      // A socket file left by a previous run would make listen fail with EADDRINUSE.
      if (existsSync(unixPath)) unlinkSync(unixPath);
      this.unix = net.createServer((s) => this.accept(s, 'unix'));
      await listenOn(this.unix, (cb) => this.unix!.listen(unixPath, cb));
      chmodSync(unixPath, 0o600);
    }
  }

  /** The TCP address actually bound (port 0 picks a free one). */
  tcpAddress(): { host: string; port: number } | undefined {
    const a = this.tcp?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  private accept(socket: Socket, kind: ConnectionKind): void {
    const max = this.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.connections.size >= max) {
      this.log.warn('connection refused: limit reached', { address: socket.remoteAddress, limit: max });
      socket.on('error', () => {});
      socket.end(wire.streamHeader('refused', this.options.domain) + wire.streamError('policy-violation', xmppMessages.tooManyConnections(max)));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socket.setNoDelay(true);
    const conn = new Connection(socket, {
      kind,
      domain: this.options.domain,
      limits: this.options.limits ?? DEFAULT_XML_LIMITS,
      timeouts: { ...DEFAULT_TIMEOUTS, ...this.options.timeouts },
      maxOutboundBytes: this.options.maxOutboundBytes ?? 8 * 1024 * 1024,
      maxQueuedDocuments: 64,
      maxAuthAttempts: 3,
      manager: this.options.manager,
      bus: this.options.bus,
      log: this.log,
      trustedFingerprints: this.options.tls.fingerprints,
      authenticatePassword: (user, password, address) => this.authenticatePassword(user, password, address),
      certificatePrincipal: async (cn) => {
        const role = await this.options.users.role(cn);
        return role ? { name: cn, role, via: 'certificate' } : null;
      },
      startTls: (plain, onSecure) => {
        this.pendingTls.set(plain, onSecure);
        plain.once('close', () => this.pendingTls.delete(plain));
        this.tlsServer.emit('connection', plain);
      },
      onClose: (c) => this.connections.delete(c),
    });
    this.connections.add(conn);
  }

  private async authenticatePassword(user: string, password: string, address: string): Promise<Principal | null> {
    const delay = this.throttle.delayFor(address);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const found = await this.options.users.verify(user, password);
    if (found) {
      this.throttle.succeeded(address);
      return { name: found.name, role: found.role, via: 'password' };
    }
    const failures = this.throttle.failed(address);
    this.log.warn('authentication failed', { user, address, failures, nextDelayMs: this.throttle.delayFor(address) });
    return null;
  }

  /** Stop listening, tell every client we are going, and wait for the listeners to close. */
  async close(): Promise<void> {
    for (const c of this.connections) c.fail('system-shutdown', xmppMessages.shutdown());
    await Promise.all([this.tcp, this.unix].filter((s): s is net.Server => !!s).map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const c of this.connections) c.fail('system-shutdown');
  }
}

function listenOn(server: net.Server, listen: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    listen(() => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}
