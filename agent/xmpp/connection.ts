/**
 * One client connection of the XML interface: the server side of the XMPP
 * handshake (RFC 6120) followed by bare LDM documents (protocol.md section 1).
 *
 * States, in the order a remote client goes through them:
 *
 *   awaiting-stream ──header──► awaiting-starttls ──<starttls/>──► tls-handshake
 *        (plain)                  (features: STARTTLS)                 │ TLS up
 *                                                                      ▼
 *   online ◄──header── awaiting-authed-stream ◄──<success/>── awaiting-auth ◄──header── awaiting-tls-stream
 *
 *   online ──migration-channel document──► switching ──success──► binary
 *                                              │ refused
 *                                              ▼
 *                                           closing (the failure answer, then </stream:stream>)
 *
 * Local connections (the Unix socket, or loopback TCP with --local-tcp) skip
 * SASL: after the TLS stream header they are online. On the Unix socket TLS
 * is offered but optional, so a local client may send documents right after
 * the first header. Any state may go to `closing` (a stream error or the
 * peer's </stream:stream>) and then `closed`.
 *
 * Binary channels (agent/migration/README.md): an online peer sends an LDM
 * document whose one command is the internal action `migration-channel`, naming
 * a channel in <arguments>. The reader parses nothing after it, and the socket's
 * 'data' goes unread from then on: the bytes after the document in the same read
 * are kept (`rest`), the next ones wait in the socket. Once the documents before
 * it are answered, the connection answers it: success when the user has the
 * write role and the server has a handler for the name (`binaryChannels`);
 * then the connection is `binary` and hands the socket, `rest` and the session
 * to the handler, which owns the socket from there (no events, no timeouts, no
 * XML: a stream error is not written, the socket is cut). A refusal is answered
 * with a failure and the stream closed: the peer may have sent binary already.
 *
 * Until the peer is online only the handshake's elements are read, each
 * within the small pre-authentication limits (xml/limits.ts); anything else
 * ends the stream at its start tag, before its content is parsed.
 *
 * Reading follows the peer's reading: while output the peer has not taken
 * is over `maxOutboundBytes`, or documents wait for their answer beyond
 * `maxQueuedDocuments` / `maxQueuedBytes`, the connection stops reading
 * (socket paused; documents already read wait in the reader) and takes the
 * next document once there is room again. A peer that pipelines and never
 * reads costs at most those bounds, and is not cut off for it (events are
 * different: nobody asked for them, so a subscriber that does not read is
 * cut off).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ErrorCodes, XmlError } from '../errors.ts';
import type { EventBus, LdmEvent, Subscription } from '../events/bus.ts';
import type { Logger } from '../log.ts';
import type { Manager, Principal, Session } from '../manager/manager.ts';
import { channelMessages, xmppMessages } from '../messages.ts';
import { decodeTree } from '../xml/decode.ts';
import { encodeDocument } from '../xml/encode.ts';
import { PRE_AUTH_LIMITS, type PreAuthLimits, type XmlLimits } from '../xml/limits.ts';
import { failure, success } from '../xml/document.ts';
import { DEFAULT_INTERFACE_VERSION, describeXmlError, overallFailure } from '../xml/respond.ts';
import { attr, firstChild, localName, type XmlElement } from '../xml/tree.ts';
import { decodeExternal, decodePlain } from './sasl.ts';
import { StreamReader, type StreamHeader } from './stream.ts';
import * as wire from './wire.ts';

export type ConnectionState =
  | 'awaiting-stream'
  | 'awaiting-starttls'
  | 'tls-handshake'
  | 'awaiting-tls-stream'
  | 'awaiting-auth'
  | 'awaiting-authed-stream'
  | 'online'
  | 'switching'
  | 'binary'
  | 'closing'
  | 'closed';

/** The internal action that switches an authenticated connection to binary frames. */
export const CHANNEL_ACTION = 'migration-channel';

/**
 * Takes over a connection switched to binary: the TLS socket (paused, its data not
 * yet read), the bytes that followed the switch document in the same read, and the
 * session that logged in.
 */
export type BinaryChannelHandler = (socket: Socket, rest: Buffer, session: Session) => void;

/** The channel a switch document names, or null when the document is not a well-formed switch. */
export function channelName(el: XmlElement): string | null {
  const cmds = el.children.filter((c) => c.local === 'cmd');
  if (cmds.length !== 1) return null;
  const cmd = cmds[0]!;
  const args = cmd.children.filter((c) => c.local === 'arguments');
  if (args.length !== 1 || cmd.children.some((c) => c.local === 'data')) return null;
  const name = args[0]!.text.trim();
  return name === '' ? null : name;
}

/** True when some command of the document asks for the switch (well-formed or not: it is answered either way). */
function asksForChannel(el: XmlElement): boolean {
  return el.children.some((c) => c.local === 'cmd' && c.children.some((a) => a.local === 'action' && a.text.trim() === CHANNEL_ACTION));
}

/** How the connection reached us: decides whether SASL is needed and TLS required. */
export type ConnectionKind = 'remote' | 'local-tcp' | 'unix';

export interface ConnectionTimeouts {
  /** From accept to online (protocol: 10 s). */
  handshakeMs: number;
  /** Online with no input at all. */
  idleMs: number;
  /**
   * A top-level element started but not finished, counting only time in
   * which the agent was reading (a busy agent or a paused connection does
   * not count against the peer).
   */
  partialDocumentMs: number;
}

export interface ConnectionDeps {
  kind: ConnectionKind;
  /** Our name in stream headers and JIDs. */
  domain: string;
  limits: XmlLimits;
  /** Limits before login (default PRE_AUTH_LIMITS). */
  preAuthLimits?: PreAuthLimits;
  timeouts: ConnectionTimeouts;
  /** Bytes written but not yet taken by the peer before it counts as too slow. */
  maxOutboundBytes: number;
  /** Documents received but not yet answered: beyond this, reading waits. */
  maxQueuedDocuments: number;
  /** Bytes of documents received but not yet answered: beyond this, reading waits (default: the document size limit). */
  maxQueuedBytes?: number;
  /** Failed SASL attempts allowed on one connection before it is closed. */
  maxAuthAttempts: number;
  manager: Manager;
  bus: EventBus;
  log: Logger;
  /** Certificates trusted as they are (not only as chain anchors), by SHA-256 fingerprint. */
  trustedFingerprints: Set<string>;
  /** Checks a password (with throttling by address); null when refused. */
  authenticatePassword(user: string, password: string, address: string): Promise<Principal | null>;
  /** The principal of a trusted client certificate's common name; null when no such user. */
  certificatePrincipal(commonName: string): Promise<Principal | null>;
  /** Hands the plain socket to the shared tls.Server; `onSecure` is called with the TLS socket. */
  startTls(socket: Socket, onSecure: (tls: TLSSocket) => void): void;
  onClose(conn: Connection): void;
  /** The handler of a binary channel by name; none: every switch is refused. */
  binaryChannels?: (name: string) => BinaryChannelHandler | undefined;
}

const LOCAL_PRINCIPAL: Principal = { name: 'local', role: 'write', via: 'local' };

/** What a stream carries before login (RFC 6120 sections 5 and 6); any other element ends it. */
const HANDSHAKE_ELEMENTS = new Set(['starttls', 'auth', 'response', 'abort']);

/** Open connections, for the output gauge. */
const live = new Set<Connection>();
let peakUnread = 0;

/**
 * Output written to open connections and not yet taken by their peers: a
 * gauge for tests and monitoring (the bound is `maxOutboundBytes` per
 * connection, plus at most one response).
 */
export const unreadOutput = {
  /** Bytes now, over every open connection. */
  total(): number {
    let n = 0;
    for (const c of live) n += c.unreadOutputBytes;
    return n;
  },
  /** The most one connection had at once since the process started or `resetPeak`. */
  peak(): number {
    return peakUnread;
  },
  resetPeak(): void {
    peakUnread = 0;
  },
};

export class Connection {
  state: ConnectionState = 'awaiting-stream';
  readonly id = randomBytes(6).toString('hex');
  readonly address: string;
  private socket: Socket;
  private reader: StreamReader;
  private headerSent = false;
  private tls: TLSSocket | undefined;
  private session: Session | undefined;
  private subscription: Subscription | undefined;
  private work: Promise<void> = Promise.resolve();
  private queued = 0;
  private queuedBytes = 0;
  private authAttempts = 0;
  /** Top-level elements read before login. */
  private preAuthStanzas = 0;
  /** Set while the handshake waits on us (TLS, SASL): reading stops. */
  private holding = false;
  /** A switch document was read: the socket's input is no longer ours (kept for the channel's handler). */
  private detached = false;
  /** Set while the peer has not taken more than `maxOutboundBytes`: reading stops, answering waits. */
  private outputBlocked = false;
  private readonly drainWaiters: (() => void)[] = [];
  /** A stream error was sent: nothing more is answered. */
  private failed = false;
  /** When input last arrived (performance.now()). */
  private lastInput = 0;
  /** Top-level elements completed so far: a new one restarts the partial-document clock. */
  private completed = 0;
  private partial: { timer: NodeJS.Timeout; last: number; elapsed: number; completed: number } | undefined;
  private readonly timers: { handshake?: NodeJS.Timeout; idle?: NodeJS.Timeout } = {};
  private readonly log: Logger;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);

  constructor(
    socket: Socket,
    private readonly deps: ConnectionDeps,
  ) {
    this.socket = socket;
    this.address = deps.kind === 'unix' ? 'unix' : `${socket.remoteAddress ?? '?'}`;
    this.log = deps.log.child(`conn:${this.id}`);
    this.reader = this.newReader();
    socket.on('data', this.onData);
    socket.on('error', (err) => this.log.debug('socket error', { error: err.message }));
    socket.on('close', () => this.closed());
    this.timers.handshake = setTimeout(() => this.timeout(xmppMessages.handshakeTimeout(deps.timeouts.handshakeMs)), deps.timeouts.handshakeMs);
    live.add(this);
    this.log.debug('connected', { kind: deps.kind, address: this.address });
  }

  get principal(): Principal | undefined {
    return this.session?.principal;
  }

  /** Bytes written to the peer and not yet taken by it. */
  get unreadOutputBytes(): number {
    return this.socket.destroyed ? 0 : this.socket.writableLength;
  }

  private get preAuthLimits(): PreAuthLimits {
    return this.deps.preAuthLimits ?? PRE_AUTH_LIMITS;
  }

  // ── input ────────────────────────────────────────────────────────────────

  private newReader(): StreamReader {
    return new StreamReader(this.session ? this.deps.limits : this.preAuthLimits, {
      header: (h) => this.onHeader(h),
      admit: (name) => this.admit(name),
      element: (el, bytes, rest) => (rest === undefined ? this.onElement(el, bytes) : this.onSwitch(el, rest)),
      last: (el) => this.claimForChannel(el),
      end: () => this.onPeerEnd(),
    });
  }

  private receive(chunk: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.lastInput = performance.now();
    this.touch();
    this.input(() => this.reader.write(chunk));
  }

  /** Run the reader (on new input, or to go on after a pause); a broken stream ends here. */
  private input(work: () => void): void {
    try {
      work();
    } catch (err) {
      if (err instanceof XmlError) return this.xmlError(err);
      this.log.error('input handling failed', { error: (err as Error).message });
      return this.fail('internal-server-error');
    }
    this.watchPartialDocument();
    this.flow();
  }

  /** Read from the socket unless something says wait: an <auth/> being checked, queued documents, unread output. */
  private flow(): void {
    // During the TLS handshake the plain socket belongs to the TLS server; after a switch, to the channel.
    if (this.detached || this.state === 'tls-handshake' || this.state === 'closing' || this.state === 'closed') return;
    const stop = this.readingStopped;
    if (stop !== this.socket.isPaused()) {
      if (stop) this.socket.pause();
      else this.socket.resume();
    }
  }

  private get readingStopped(): boolean {
    return this.holding || this.outputBlocked || this.reader.paused;
  }

  /** Restart the idle timer: any input counts as activity. */
  private touch(): void {
    if (!this.session || this.detached || this.state === 'closing' || this.state === 'closed') return;
    clearTimeout(this.timers.idle);
    this.timers.idle = setTimeout(() => this.timeout(xmppMessages.idleTimeout(this.deps.timeouts.idleMs)), this.deps.timeouts.idleMs);
  }

  /**
   * The partial-document clock times the peer, not the agent: it advances in
   * ticks, a tick that comes late (the agent was busy) counts as one tick,
   * ticks while the connection is not reading count nothing, and the verdict
   * waits for one turn of the event loop, in which input that arrived while
   * the agent was busy is read first.
   */
  private watchPartialDocument(): void {
    if (this.detached) return this.stopPartialClock();
    if (this.state === 'closing' || this.state === 'closed') return;
    if (!this.reader.midElement) return this.stopPartialClock();
    if (this.partial && this.partial.completed === this.completed) return;
    this.stopPartialClock();
    const ms = this.deps.timeouts.partialDocumentMs;
    const tick = Math.max(10, Math.ceil(ms / 10));
    const clock = { last: performance.now(), elapsed: 0, completed: this.completed, timer: setInterval(() => this.partialTick(clock, tick, ms), tick) };
    this.partial = clock;
  }

  private partialTick(clock: NonNullable<Connection['partial']>, tick: number, ms: number): void {
    const now = performance.now();
    if (!this.readingStopped) clock.elapsed += Math.min(now - clock.last, tick);
    clock.last = now;
    if (clock.elapsed < ms) return;
    setImmediate(() => {
      if (this.partial !== clock || !this.reader.midElement || this.state === 'closing' || this.state === 'closed') return;
      // Bytes came in this very turn: they were waiting on the agent, not the peer. The next tick judges again.
      if (this.lastInput >= now) return;
      this.timeout(xmppMessages.partialTimeout(ms));
    });
  }

  private stopPartialClock(): void {
    if (!this.partial) return;
    clearInterval(this.partial.timer);
    this.partial = undefined;
  }

  private xmlError(err: XmlError): void {
    this.log.info('stream error', { reason: err.message, line: err.line });
    const condition: wire.StreamErrorCondition =
      err.code === ErrorCodes.XML_LIMIT
        ? 'policy-violation'
        : err.code === ErrorCodes.XML_DOCTYPE
          ? 'restricted-xml'
          : 'not-well-formed';
    this.fail(condition, describeXmlError(err));
  }

  // ── handshake ───────────────────────────────────────────────────────────

  private sendHeader(to?: string): void {
    this.write(wire.streamHeader(this.id, this.deps.domain, to));
    this.headerSent = true;
  }

  private onHeader(h: StreamHeader): void {
    // A header is expected once per stream, at its start; a second one would swallow what follows.
    if (h.again || !(this.state === 'awaiting-stream' || this.state === 'awaiting-tls-stream' || this.state === 'awaiting-authed-stream')) {
      return this.fail('not-well-formed', xmppMessages.unexpectedHeader());
    }
    this.sendHeader(h.attrs['from']);
    const local = this.deps.kind !== 'remote';
    switch (this.state) {
      case 'awaiting-stream':
        // The Unix socket is private to its owner (mode 0600): TLS is offered, not required.
        this.write(wire.features({ starttls: this.deps.kind === 'unix' ? 'optional' : 'required', bind: this.deps.kind === 'unix' }));
        this.state = 'awaiting-starttls';
        if (this.deps.kind === 'unix') this.online(LOCAL_PRINCIPAL, 'awaiting-starttls');
        break;
      case 'awaiting-tls-stream': {
        if (local) {
          this.write(wire.features({ bind: true }));
          this.online(LOCAL_PRINCIPAL);
          break;
        }
        const cert = this.peerCertificateProblem();
        if (cert) {
          this.log.warn('client certificate refused', { address: this.address, reason: cert });
          return this.fail('not-authorized', cert);
        }
        this.write(wire.features({ mechanisms: this.mechanisms() }));
        this.state = 'awaiting-auth';
        break;
      }
      case 'awaiting-authed-stream':
        this.write(wire.features({ bind: true }));
        this.online(this.session!.principal);
        break;
    }
  }

  /** A certificate the client presented but we do not trust refuses the connection, naming why. */
  private peerCertificateProblem(): string | undefined {
    const tls = this.tls;
    if (!tls) return undefined;
    const cert = tls.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return undefined;
    if (this.certificateTrusted(tls)) return undefined;
    return xmppMessages.untrustedCertificate(String(cert.subject?.CN ?? '?'), String(cert.issuer?.CN ?? '?'), String(tls.authorizationError ?? 'not trusted'));
  }

  private certificateTrusted(tls: TLSSocket): boolean {
    return tls.authorized || this.deps.trustedFingerprints.has(tls.getPeerCertificate()?.fingerprint256 ?? '');
  }

  private trustedCommonName(): string | undefined {
    const tls = this.tls;
    if (!tls || !this.certificateTrusted(tls)) return undefined;
    const cn = tls.getPeerCertificate()?.subject?.CN;
    return typeof cn === 'string' && cn !== '' ? cn : undefined;
  }

  private mechanisms(): string[] {
    return this.trustedCommonName() ? ['EXTERNAL', 'PLAIN'] : ['PLAIN'];
  }

  /** A top-level start tag: before login only the handshake's elements are read, and only a few. */
  private admit(name: string): void {
    if (this.session) return;
    const limits = this.preAuthLimits;
    if (!HANDSHAKE_ELEMENTS.has(localName(name))) {
      this.log.debug('element refused before login', { name, address: this.address });
      this.fail('not-authorized', this.tls || this.deps.kind !== 'remote' ? xmppMessages.notYetAuthenticated(name) : xmppMessages.tlsFirst());
    } else if (++this.preAuthStanzas > limits.maxStanzas) {
      this.fail('policy-violation', xmppMessages.tooMuchBeforeLogin(limits.maxStanzas));
    }
  }

  private onElement(el: XmlElement, bytes: number): void {
    this.completed++;
    // Only <auth/> holds the stream (the reader stops at <starttls/>): nothing may follow it before its answer.
    if (this.holding) return this.fail('policy-violation', xmppMessages.beforeAuthAnswer(el.name));
    switch (el.local) {
      case 'starttls':
        return this.onStartTls();
      case 'auth':
        return this.onAuth(el);
      case 'abort':
        if (this.state === 'awaiting-auth') this.write(wire.saslFailure('aborted'));
        return;
      case 'iq':
        return this.onIq(el);
      case 'ldm_interface':
        return this.onDocument(el, bytes);
      case 'presence':
      case 'message':
        // Stock clients announce presence once online; nothing to do with it.
        return;
      default:
        if (this.state !== 'online') return this.fail('not-authorized', xmppMessages.notYetAuthenticated(el.name));
        this.log.debug('ignored element', { name: el.name });
    }
  }

  private onStartTls(): void {
    if (this.state !== 'awaiting-starttls' || this.tls) return this.fail('policy-violation', xmppMessages.unexpected('starttls'));
    this.write(wire.proceed());
    // What follows <starttls/> in the same read is not for this stream (at best, TLS bytes sent too early).
    this.reader.stop();
    this.state = 'tls-handshake';
    this.holding = true;
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    this.deps.startTls(plain, (tls) => this.secured(tls));
  }

  private secured(tls: TLSSocket): void {
    if (this.state === 'closing' || this.state === 'closed') return void tls.destroy();
    this.tls = tls;
    this.socket = tls;
    this.holding = false;
    this.reader = this.newReader();
    this.headerSent = false;
    this.state = 'awaiting-tls-stream';
    tls.on('data', this.onData);
    tls.on('error', (err) => this.log.debug('tls error', { error: err.message }));
    this.log.debug('tls established', { protocol: tls.getProtocol(), cipher: tls.getCipher()?.name });
  }

  private onAuth(el: XmlElement): void {
    if (this.state !== 'awaiting-auth') {
      const why = this.tls || this.deps.kind !== 'remote' ? xmppMessages.unexpected('auth') : xmppMessages.tlsFirst();
      return this.fail(this.state === 'online' ? 'policy-violation' : 'not-authorized', why);
    }
    const mechanism = (attr(el, 'mechanism') ?? '').toUpperCase();
    this.holding = true;
    this.flow();
    this.authenticate(mechanism, el.text)
      .then((principal) => {
        if (this.state !== 'awaiting-auth') return;
        if (principal) {
          this.session = { principal, events: new Set() };
          this.write(wire.saslSuccess());
          this.reader = this.newReader();
          this.headerSent = false;
          this.state = 'awaiting-authed-stream';
          this.log.info('authenticated', { user: principal.name, role: principal.role, via: principal.via, address: this.address });
        } else if (++this.authAttempts >= this.deps.maxAuthAttempts) {
          this.write(wire.saslFailure('not-authorized'));
          this.fail('not-authorized', xmppMessages.tooManyAttempts(this.authAttempts));
        }
      })
      .catch((err: Error) => {
        this.log.error('authentication failed unexpectedly', { error: err.message });
        this.fail('internal-server-error');
      })
      .finally(() => {
        this.holding = false;
        this.flow();
      });
  }

  /** Runs one SASL exchange; writes the failure itself, returns the principal on success. */
  private async authenticate(mechanism: string, payload: string): Promise<Principal | null> {
    if (mechanism === 'PLAIN') {
      const creds = decodePlain(payload);
      if (!creds) {
        this.write(wire.saslFailure('malformed-request', xmppMessages.malformedPlain()));
        return null;
      }
      if (creds.authzid !== '' && creds.authzid !== creds.user) {
        this.write(wire.saslFailure('not-authorized', xmppMessages.authzidMismatch()));
        return null;
      }
      const principal = await this.deps.authenticatePassword(creds.user, creds.password, this.address);
      if (this.state !== 'awaiting-auth') return null;
      if (!principal) this.write(wire.saslFailure('not-authorized'));
      return principal;
    }
    if (mechanism === 'EXTERNAL') {
      const cn = this.trustedCommonName();
      const asked = decodeExternal(payload);
      const principal = cn ? await this.deps.certificatePrincipal(cn) : null;
      if (this.state !== 'awaiting-auth') return null;
      if (!cn || asked === null || (asked !== '' && asked !== cn) || !principal) {
        this.log.info('certificate login refused', { address: this.address, cn });
        this.write(wire.saslFailure('not-authorized', cn ? xmppMessages.noUserForCertificate(cn) : xmppMessages.noCertificate()));
        return null;
      }
      return principal;
    }
    this.write(wire.saslFailure('invalid-mechanism'));
    return null;
  }

  /** The peer may now send documents; `state` stays awaiting-starttls for a Unix client that may still upgrade. */
  private online(principal: Principal, state: 'online' | 'awaiting-starttls' = 'online'): void {
    this.session ??= { principal, events: new Set() };
    this.state = state;
    this.reader.setLimits(this.deps.limits);
    clearTimeout(this.timers.handshake);
    this.timers.handshake = undefined;
    this.subscription ??= this.deps.bus.subscribe((ev) => this.sendEvent(ev), this.session.events);
    this.touch();
  }

  private onIq(el: XmlElement): void {
    const id = attr(el, 'id') ?? '';
    if (!this.session) return this.fail('not-authorized', xmppMessages.notYetAuthenticated(el.name));
    const type = attr(el, 'type');
    if (firstChild(el, 'bind') && type === 'set') {
      const resource = firstChild(firstChild(el, 'bind')!, 'resource')?.text.trim() || `ldm-${this.id}`;
      return this.write(wire.bindResult(id, `${this.session.principal.name}@${this.deps.domain}/${resource}`));
    }
    if (firstChild(el, 'session')) return this.write(wire.iqResult(id));
    if (type === 'get' || type === 'set') this.write(wire.iqError(id, 'service-unavailable'));
  }

  // ── binary channels ─────────────────────────────────────────────────────

  /**
   * Asked by the reader of every complete element: a switch document from a peer
   * that may send documents ends the XML stream here. From now on the socket's
   * input is left for the channel: bytes not yet read stay in the socket.
   */
  private claimForChannel(el: XmlElement): boolean {
    if (!this.mayProcessDocuments || el.local !== 'ldm_interface' || !asksForChannel(el)) return false;
    this.detached = true;
    this.socket.removeListener('data', this.onData);
    this.socket.pause();
    clearTimeout(this.timers.idle);
    this.stopPartialClock();
    return true;
  }

  /** The switch document, delivered after the documents before it: answered once they are. */
  private onSwitch(el: XmlElement, rest: Buffer): void {
    this.completed++;
    const session = this.session!;
    this.state = 'switching';
    // Events are XML: none may be written once the peer reads frames.
    this.subscription?.close();
    this.subscription = undefined;
    const name = channelName(el);
    const version = attr(el, 'version')?.trim() || DEFAULT_INTERFACE_VERSION;
    this.work = this.work.then(async () => {
      await this.outputRoom();
      if (this.failed || this.state !== 'switching') return;
      let refusal: string | undefined;
      let handler: BinaryChannelHandler | undefined;
      if (name === null) refusal = channelMessages.switchMalformed();
      else if (session.principal.role !== 'write') refusal = channelMessages.switchRole(session.principal.name, session.principal.role);
      else if (!(handler = this.deps.binaryChannels?.(name))) refusal = channelMessages.switchUnknown(name);
      const status = refusal === undefined ? success() : failure(refusal);
      const cmd = { action: CHANNEL_ACTION, options: [], arguments: name === null ? [] : [name], data: [], response: status };
      // Unindented: nothing may follow the answer's last '>' but frames (no trailing newline).
      this.write(encodeDocument({ root: 'LDM_interface', version, commands: [cmd], response: { ...status } }, { indent: false }));
      if (refusal !== undefined || !handler) {
        this.log.info('binary channel refused', { user: session.principal.name, channel: name, reason: refusal });
        return this.close();
      }
      this.state = 'binary';
      live.delete(this);
      this.log.info('binary channel open', { user: session.principal.name, channel: name, address: this.address });
      handler(this.socket, rest, session);
    });
  }

  // ── LDM documents ───────────────────────────────────────────────────────

  private get mayProcessDocuments(): boolean {
    return this.session !== undefined && (this.state === 'online' || (this.deps.kind === 'unix' && this.state === 'awaiting-starttls'));
  }

  private onDocument(el: XmlElement, bytes: number): void {
    const session = this.session;
    if (!session || !this.mayProcessDocuments) {
      return this.fail('not-authorized', this.tls || this.deps.kind !== 'remote' ? xmppMessages.notYetAuthenticated(el.name) : xmppMessages.tlsFirst());
    }
    this.queued++;
    this.queuedBytes += bytes;
    // The reader stops after this document; the next one is read once an answer has made room.
    if (this.queueFull) this.reader.pause();
    this.work = this.work.then(async () => {
      try {
        await this.outputRoom();
        if (this.failed || this.state === 'closed') return;
        const response = await this.answer(el, session);
        this.write(response);
      } catch (err) {
        this.log.error('request failed', { error: (err as Error).message });
        this.write(encodeDocument(overallFailure(xmppMessages.internalError())));
      } finally {
        this.queued--;
        this.queuedBytes -= bytes;
        if (this.reader.paused && !this.queueFull && !this.failed) this.input(() => this.reader.resume());
      }
    });
  }

  private get queueFull(): boolean {
    return this.queued >= this.deps.maxQueuedDocuments || this.queuedBytes >= (this.deps.maxQueuedBytes ?? this.deps.limits.maxBytes);
  }

  /** Resolves once the peer has taken enough of our output to answer the next document (or the connection is gone). */
  private outputRoom(): Promise<void> | undefined {
    if (!this.outputBlocked) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private readonly onDrain = (): void => {
    this.outputBlocked = false;
    this.releaseDrainWaiters();
    this.flow();
  };

  private releaseDrainWaiters(): void {
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private async answer(el: XmlElement, session: Session): Promise<string> {
    let doc;
    try {
      doc = decodeTree(el, 'request');
    } catch (err) {
      if (!(err instanceof XmlError)) throw err;
      return encodeDocument(overallFailure(describeXmlError(err), attr(el, 'version')?.trim() || undefined));
    }
    return encodeDocument(await this.deps.manager.execute(doc, session));
  }

  private sendEvent(ev: LdmEvent): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.socket.writableLength > this.deps.maxOutboundBytes) {
      this.log.warn('slow event subscriber disconnected', { address: this.address, pending: this.socket.writableLength });
      // The peer is not reading: the error text would queue behind what it has not read; cut it off.
      this.fail('policy-violation', xmppMessages.tooSlow(this.deps.maxOutboundBytes), true);
      return;
    }
    this.write(ev.text());
  }

  // ── output and closing ──────────────────────────────────────────────────

  private write(text: string): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const socket = this.socket;
    socket.write(text);
    const unread = socket.writableLength;
    if (unread > peakUnread) peakUnread = unread;
    // 'drain' comes only once the socket asked for it (past its own high-water mark).
    if (unread > this.deps.maxOutboundBytes && socket.writableNeedDrain && !this.outputBlocked) {
      this.outputBlocked = true;
      this.log.debug('output backed up: reading paused', { address: this.address, pending: unread });
      socket.once('drain', this.onDrain);
      this.flow();
    }
  }

  private onPeerEnd(): void {
    this.state = this.state === 'online' ? 'closing' : this.state;
    // Answer what was asked before the peer closed, then close our side.
    void this.work.then(() => this.close());
  }

  private timeout(text: string): void {
    this.log.info('timeout', { address: this.address, reason: text });
    this.fail('connection-timeout', text);
  }

  /** Send a stream error (RFC 6120 section 4.9) and close. */
  fail(condition: wire.StreamErrorCondition, text?: string, destroy = false): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.state === 'binary') {
      // The peer reads frames: a stream error would only garble them. The channel sees the socket close.
      this.log.info('binary channel cut', { reason: text ?? condition });
      this.state = 'closing';
      this.clearTimers();
      return void this.socket.destroy();
    }
    this.failed = true;
    this.reader.stop();
    // Nothing more is read: a peer flooding us costs no more reading (the socket is destroyed shortly).
    if (this.state !== 'tls-handshake') this.socket.pause();
    if (!this.headerSent) this.sendHeader();
    this.write(wire.streamError(condition, text));
    this.state = 'closing';
    this.finish(destroy);
    // Unread input is left unread; once the error is on its way the socket goes (its slot with it).
    const socket = this.socket;
    if (!destroy) socket.once('finish', () => socket.destroy());
  }

  /** Close cleanly: </stream:stream>, then end the socket. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'binary') return this.fail('system-shutdown');
    if (this.headerSent) this.write(wire.streamClose());
    this.state = 'closing';
    this.finish(false);
  }

  private finish(destroy: boolean): void {
    this.clearTimers();
    this.subscription?.close();
    if (destroy) this.socket.destroy();
    else {
      this.socket.end();
      // A peer that never reads would keep the socket half-open forever.
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
  }

  private clearTimers(): void {
    clearTimeout(this.timers.handshake);
    clearTimeout(this.timers.idle);
    this.stopPartialClock();
  }

  private closed(): void {
    if (this.state === 'closed') return;
    // With STARTTLS the plain socket closes under the TLS one: only the live socket's close counts.
    this.state = 'closed';
    this.clearTimers();
    this.subscription?.close();
    live.delete(this);
    // Answers waiting for room are dropped: there is no one to read them.
    this.outputBlocked = false;
    this.releaseDrainWaiters();
    this.deps.onClose(this);
  }
}
