/**
 * The XML interface service: a TCP listener (remote clients: STARTTLS
 * required, then SASL), the local Unix socket (no SASL, write role), and the
 * shared TLS context. Admits connections within their allowances
 * (admission.ts), closes connections that stay silent or do not start TLS in
 * time, runs password checks under the login policy (throttle.ts), and keeps
 * open sessions in step with the user store (a removed user's sessions close,
 * a changed role applies from the next request).
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
import { addressKey, Admission, DEFAULT_ADMISSION, RefusalLog, type AdmissionLimits, type Slot } from './admission.ts';
import { Connection, type BinaryChannelHandler, type ConnectionKind, type ConnectionTimeouts } from './connection.ts';
import { DEFAULT_THROTTLE, LoginThrottle, type ThrottleOptions } from './throttle.ts';
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
  timeouts?: Partial<ServiceTimeouts>;
  /** TCP connections at once (all addresses). */
  maxConnections?: number;
  /** Connections to the local Unix socket at once, counted apart from TCP. */
  maxLocalConnections?: number;
  /** TCP connections at once from one address (IPv6: one /64). */
  maxConnectionsPerAddress?: number;
  maxOutboundBytes?: number;
  throttle?: Partial<ThrottleOptions>;
  /**
   * Handlers of binary channels by name (connection.ts: the migration-channel switch);
   * the migration target registers itself here. Without it every switch is refused.
   */
  binaryChannels?: (name: string) => BinaryChannelHandler | undefined;
}

/** The connection's own timeouts, and the two early ones the server keeps. */
export interface ServiceTimeouts extends ConnectionTimeouts {
  /** From accept to the first byte from the peer. */
  firstByteMs: number;
  /** From accept to TLS established, on TCP (where TLS is required). */
  tlsMs: number;
}

export const DEFAULT_TIMEOUTS: ServiceTimeouts = { handshakeMs: 10_000, idleMs: 30 * 60_000, partialDocumentMs: 30_000, firstByteMs: 3000, tlsMs: 5000 };

/** What the server keeps of one open connection beside it. */
interface Tracked extends Slot {
  conn: Connection;
  /** The accepted socket, and the TLS socket over it once there is one: for the last resort of close(). */
  sockets: Socket[];
  timers: { firstByte?: NodeJS.Timeout; tls?: NodeJS.Timeout };
}

const isLoopback = (address: string | undefined) =>
  !!address && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));

export class XmppServer {
  private readonly connections = new Map<Connection, Tracked>();
  private readonly tlsServer: tls.Server;
  private readonly pendingTls = new Map<Socket, (s: TLSSocket) => void>();
  private readonly throttle: LoginThrottle;
  private readonly admission: Admission<Tracked>;
  private readonly refusals: RefusalLog;
  private readonly timeouts: ServiceTimeouts;
  private tcp: net.Server | undefined;
  private unix: net.Server | undefined;
  private readonly log: Logger;

  constructor(private readonly options: XmppServerOptions) {
    this.log = options.log.child('xmpp');
    this.throttle = new LoginThrottle({ ...DEFAULT_THROTTLE, ...options.throttle });
    const limits: AdmissionLimits = {
      ...DEFAULT_ADMISSION,
      maxConnections: options.maxConnections ?? DEFAULT_ADMISSION.maxConnections,
      maxLocalConnections: options.maxLocalConnections ?? DEFAULT_ADMISSION.maxLocalConnections,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? DEFAULT_ADMISSION.maxConnectionsPerAddress,
    };
    this.admission = new Admission(limits);
    this.refusals = new RefusalLog(this.log);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.tlsServer = tls.createServer({
      key: options.tls.key,
      cert: options.tls.cert,
      ca: options.tls.ca,
      minVersion: 'TLSv1.2',
      // Ask for a certificate (EXTERNAL login) without requiring one (PLAIN login);
      // a certificate that is presented but untrusted is refused by the connection.
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: this.timeouts.handshakeMs,
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
    const local = kind === 'unix';
    const key = local ? 'unix' : addressKey(socket.remoteAddress);
    const now = Date.now();
    const decision = this.admission.decide(local, key, now);
    if (!decision.admit) {
      this.refusals.note(decision.reason, socket.remoteAddress ?? 'unix', decision.limit);
      const text =
        decision.reason === 'address'
          ? xmppMessages.tooManyFromAddress(decision.limit)
          : decision.reason === 'local'
            ? xmppMessages.tooManyLocal(decision.limit)
            : xmppMessages.tooManyConnections(decision.limit);
      socket.on('error', () => {});
      socket.end(wire.streamHeader('refused', this.options.domain) + wire.streamError('policy-violation', text));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    if (decision.replace) {
      const old = decision.replace;
      const limits = this.admission.limits;
      const limit = decision.at === 'local' ? limits.maxLocalConnections : decision.at === 'address' ? limits.maxConnectionsPerAddress : limits.maxConnections;
      this.refusals.note('replaced', old.conn.address, limit);
      const text = decision.at === 'total' ? xmppMessages.replacedBusiest(this.admission.held(old.key), limit) : xmppMessages.replaced(now - old.lastInput);
      // Out of the count now: the new connection takes its place at once.
      this.admission.remove(old);
      old.conn.fail('policy-violation', text);
    }
    socket.setNoDelay(true);
    const timeouts = this.timeouts;
    let tracked: Tracked;
    const conn: Connection = new Connection(socket, {
      kind,
      domain: this.options.domain,
      limits: this.options.limits ?? DEFAULT_XML_LIMITS,
      timeouts,
      maxOutboundBytes: this.options.maxOutboundBytes ?? 8 * 1024 * 1024,
      maxQueuedDocuments: 64,
      maxAuthAttempts: 3,
      manager: this.options.manager,
      bus: this.options.bus,
      log: this.log,
      trustedFingerprints: this.options.tls.fingerprints,
      authenticatePassword: (user, password, address) => this.authenticatePassword(user, password, address, tracked),
      certificatePrincipal: async (cn) => {
        const role = await this.options.users.role(cn);
        return role ? { name: cn, role, via: 'certificate' } : null;
      },
      startTls: (plain, onSecure) => {
        plain.removeListener('data', heard);
        this.pendingTls.set(plain, (secure) => {
          clearTimeout(tracked.timers.tls);
          tracked.sockets.push(secure);
          secure.on('data', heard);
          onSecure(secure);
        });
        plain.once('close', () => this.pendingTls.delete(plain));
        this.tlsServer.emit('connection', plain);
      },
      onClose: (c) => this.forget(c),
      binaryChannels: this.options.binaryChannels,
    });
    tracked = {
      conn,
      local,
      key,
      lastInput: now,
      waiting: false,
      settled: () => conn.principal !== undefined,
      sockets: [socket],
      timers: {},
    };
    const heard = () => {
      tracked.lastInput = Date.now();
      if (tracked.timers.firstByte) {
        clearTimeout(tracked.timers.firstByte);
        tracked.timers.firstByte = undefined;
      }
    };
    socket.on('data', heard);
    // A peer that connects and sends nothing, or never gets to TLS, holds a slot: not for long.
    tracked.timers.firstByte = setTimeout(() => conn.fail('connection-timeout', xmppMessages.firstByteTimeout(timeouts.firstByteMs)), timeouts.firstByteMs);
    if (!local) tracked.timers.tls = setTimeout(() => conn.fail('connection-timeout', xmppMessages.tlsTimeout(timeouts.tlsMs)), timeouts.tlsMs);
    this.connections.set(conn, tracked);
    this.admission.add(tracked);
  }

  private forget(conn: Connection): void {
    const tracked = this.connections.get(conn);
    if (!tracked) return;
    clearTimeout(tracked.timers.firstByte);
    clearTimeout(tracked.timers.tls);
    this.connections.delete(conn);
    this.admission.remove(tracked);
  }

  private async authenticatePassword(user: string, password: string, address: string, tracked: Tracked): Promise<Principal | null> {
    const { conn } = tracked;
    try {
      const outcome = await this.throttle.run(
        addressKey(address),
        user,
        () => {
          // Checking now: the agent owes this peer its answer. While it only waited for its
          // turn it could be replaced like any silent peer, so throttled attempts cannot hold
          // an address's allowance against a returning user.
          tracked.waiting = true;
          return this.options.users.verify(user, password);
        },
        () => conn.state !== 'closing' && conn.state !== 'closed',
      );
      if (outcome.dropped) return null;
      if (outcome.result) {
        // The role as the store has it now: a removal or role change during the check counts.
        const role = await this.options.users.role(outcome.result.name);
        return role ? { name: outcome.result.name, role, via: 'password' } : null;
      }
      this.log.warn('authentication failed', {
        user,
        address,
        failures: outcome.addressFailures,
        userFailures: outcome.userFailures,
        nextDelayMs: outcome.nextDelayMs,
      });
      return null;
    } finally {
      tracked.waiting = false;
      tracked.lastInput = Date.now();
    }
  }

  /**
   * Brings open sessions in line with the user store: the sessions of a user
   * who no longer exists are closed; those of a user whose role changed keep
   * going with the new role, which the next request is checked against.
   * Local sessions (no user) are left alone.
   */
  applyUsers(roleOf: (name: string) => Role | null): void {
    for (const conn of this.connections.keys()) {
      const principal = conn.principal;
      if (!principal || principal.via === 'local' || conn.state === 'closing' || conn.state === 'closed') continue;
      const role = roleOf(principal.name);
      if (role === null) {
        this.log.info('session closed: user removed', { user: principal.name, address: conn.address });
        conn.fail('not-authorized', xmppMessages.userRemoved(principal.name));
      } else if (role !== principal.role) {
        this.log.info('session role changed', { user: principal.name, address: conn.address, from: principal.role, to: role });
        // The manager reads the role from this same object for every command, queued ones included.
        principal.role = role;
      }
    }
  }

  /** Stop listening, tell every client we are going, and wait for the listeners to close. */
  async close(): Promise<void> {
    this.refusals.close();
    this.throttle.close();
    for (const c of [...this.connections.keys()]) c.fail('system-shutdown', xmppMessages.shutdown());
    // A socket paused for a login check, or a peer that neither reads nor closes, never
    // reports its end, and a paused socket does not even keep the process alive for the
    // connection's own last-resort timer: cut what is left after a moment.
    const cut = setTimeout(() => {
      for (const tracked of this.connections.values()) for (const socket of tracked.sockets) socket.destroy();
    }, 1000);
    await Promise.all([this.tcp, this.unix].filter((s): s is net.Server => !!s).map((s) => new Promise<void>((r) => s.close(() => r()))));
    clearTimeout(cut);
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
