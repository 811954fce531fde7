/**
 * The client side of the XML interface: the same handshake as the server
 * (STARTTLS, then SASL PLAIN or EXTERNAL, or nothing on a local connection),
 * then LDM documents answered in order, with events delivered as they come.
 * Used by `ldm`, by the migration source, and by tests.
 *
 * Lifecycle: connecting -> tls -> authenticating -> online -> closed, or
 * online -> binary (openChannel: the socket is handed to the caller).
 */
import { randomBytes } from 'node:crypto';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { ErrorCodes, LdmError, XmlError } from '../errors.ts';
import { clientMessages } from '../messages.ts';
import { decodeTree } from '../xml/decode.ts';
import type { LdmDocument } from '../xml/document.ts';
import { encodeDocument } from '../xml/encode.ts';
import { DEFAULT_XML_LIMITS, type XmlLimits } from '../xml/limits.ts';
import { attr, firstChild, type XmlElement } from '../xml/tree.ts';
import { CHANNEL_ACTION } from './connection.ts';
import { encodePlain } from './sasl.ts';
import { StreamReader } from './stream.ts';
import { NS } from './wire.ts';

export type ClientAuth =
  | { kind: 'password'; user: string; password: string }
  /** Client certificate; the server maps its CN to a user (SASL EXTERNAL). */
  | { kind: 'certificate' }
  /** Unix socket or --local-tcp: no SASL. */
  | { kind: 'local' };

export interface ClientOptions {
  /** TCP target, or `path` for the Unix socket. */
  host?: string;
  port?: number;
  path?: string;
  auth: ClientAuth;
  /** PEM of the CA that must have signed the server certificate; without it the server is not verified. */
  ca?: string | string[];
  /** Client certificate and key (PEM), for EXTERNAL. */
  cert?: string;
  key?: string;
  /** Name expected in the server certificate (default: host). */
  servername?: string;
  /** On the Unix socket TLS is optional; default true elsewhere, false there. */
  tls?: boolean;
  /**
   * With `ca`: a server certificate that fails verification (unknown issuer, wrong
   * name) fails the handshake with this error, which can name the certificate,
   * rather than with TLS's bare reason.
   */
  untrusted?: (cert: tls.PeerCertificate, reason: string) => Error;
  /** Give up if not online within this time. */
  timeoutMs?: number;
  limits?: XmlLimits;
}

export class ClientError extends LdmError {
  constructor(
    message: string,
    /** The stream or SASL condition when the server sent one, e.g. `not-authorized`. */
    readonly condition?: string,
  ) {
    super(ErrorCodes.CLIENT, message);
    this.name = 'ClientError';
  }
}

type Waiter = { resolve: (el: XmlElement) => void; reject: (err: Error) => void };

export class LdmClient {
  private socket: Socket;
  private reader!: StreamReader;
  private readonly incoming: XmlElement[] = [];
  private waiter: Waiter | undefined;
  private readonly pending: { resolve: (doc: LdmDocument) => void; reject: (err: Error) => void }[] = [];
  private readonly eventListeners = new Set<(ev: LdmDocument) => void>();
  private failure: Error | undefined;
  private online = false;
  /** openChannel is waiting for its answer: the response that answers it ends the XML stream. */
  private channel: { name: string; resolve: (socket: Socket) => void; reject: (err: Error) => void } | undefined;
  /** The server's name for us after resource binding, when it offered binding. */
  jid: string | undefined;

  private constructor(
    socket: Socket,
    private readonly options: ClientOptions,
  ) {
    this.socket = socket;
    this.restart();
    this.attach(socket);
  }

  /** Connect, run the whole handshake, and resolve once documents can be sent. */
  static async connect(options: ClientOptions): Promise<LdmClient> {
    const socket = options.path ? net.connect(options.path) : net.connect(options.port ?? 6482, options.host ?? '127.0.0.1');
    const client = new LdmClient(socket, options);
    const ms = options.timeoutMs ?? 15_000;
    const timer = setTimeout(() => client.abort(new ClientError(clientMessages.handshakeTimeout(ms))), ms);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
        // The timer's abort destroys a socket still connecting (a host that drops the SYN): no 'error' follows, only 'close'.
        socket.once('close', () => reject(client.failure ?? new ClientError(clientMessages.closed())));
      });
      await client.handshake();
      return client;
    } catch (err) {
      client.abort(err as Error);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.write(chunk);
      } catch (err) {
        this.abort(new ClientError(clientMessages.badServerXml((err as XmlError).message)));
      }
    });
    socket.on('error', (err) => this.abort(new ClientError(clientMessages.connectionError(err.message))));
    socket.on('close', () => this.abort(new ClientError(clientMessages.closed())));
  }

  private restart(): void {
    this.reader = new StreamReader(this.options.limits ?? DEFAULT_XML_LIMITS, {
      header: () => {},
      element: (el, _bytes, rest) => (rest === undefined ? this.onElement(el) : this.onChannelAnswer(el, rest)),
      // Responses come in request order: the switch's is the one when it is the last request waiting.
      last: (el) => this.channel !== undefined && this.online && el.local === 'ldm_interface' && this.pending.length === 1,
      end: () => this.abort(new ClientError(clientMessages.closed())),
    });
  }

  private onElement(el: XmlElement): void {
    // At the top level of a stream, <error> is only ever a stream error (RFC 6120 section 4.9).
    if (el.local === 'error') {
      const condition = el.children.find((c) => c.local !== 'text')?.local;
      const text = firstChild(el, 'text')?.text.trim();
      return this.abort(new ClientError(clientMessages.streamError(condition ?? 'undefined-condition', text), condition));
    }
    if (this.online) {
      if (el.local === 'ldm_event') return this.deliverEvent(el);
      if (el.local === 'ldm_interface') return this.deliverResponse(el);
      return; // iq results, presence: nothing we asked for
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(el);
    } else this.incoming.push(el);
  }

  private next(): Promise<XmlElement> {
    if (this.failure) return Promise.reject(this.failure);
    const queued = this.incoming.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private send(text: string): void {
    this.socket.write(text);
  }

  private openStream(): void {
    this.send(`<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' to='${this.options.servername ?? this.options.host ?? 'localhost'}' version='1.0' xml:lang='en'>`);
  }

  private async features(): Promise<XmlElement> {
    const el = await this.next();
    if (el.local !== 'features') throw new ClientError(clientMessages.unexpected(el.name, 'stream:features'));
    return el;
  }

  private async handshake(): Promise<void> {
    const opts = this.options;
    const useTls = opts.tls ?? !opts.path;
    this.openStream();
    let features = await this.features();
    if (useTls) {
      if (!firstChild(features, 'starttls')) throw new ClientError(clientMessages.noStartTls());
      this.send(`<starttls xmlns='${NS.tls}'/>`);
      const answer = await this.next();
      if (answer.local !== 'proceed') throw new ClientError(clientMessages.unexpected(answer.name, 'proceed'));
      await this.upgrade();
      this.openStream();
      features = await this.features();
    }
    if (opts.auth.kind !== 'local') {
      const offered = (firstChild(features, 'mechanisms')?.children ?? []).map((m) => m.text.trim().toUpperCase());
      const mechanism = opts.auth.kind === 'password' ? 'PLAIN' : 'EXTERNAL';
      if (!offered.includes(mechanism)) throw new ClientError(clientMessages.mechanismNotOffered(mechanism, offered), 'invalid-mechanism');
      const payload = opts.auth.kind === 'password' ? encodePlain(opts.auth.user, opts.auth.password) : '=';
      this.send(`<auth xmlns='${NS.sasl}' mechanism='${mechanism}'>${payload}</auth>`);
      const answer = await this.next();
      if (answer.local === 'failure') {
        const condition = answer.children.find((c) => c.local !== 'text')?.local ?? 'not-authorized';
        const text = firstChild(answer, 'text')?.text.trim();
        throw new ClientError(clientMessages.saslFailure(condition, text), condition);
      }
      if (answer.local !== 'success') throw new ClientError(clientMessages.unexpected(answer.name, 'success'));
      this.restart();
      this.openStream();
      features = await this.features();
    }
    if (firstChild(features, 'bind')) {
      const id = randomBytes(4).toString('hex');
      this.send(`<iq type='set' id='${id}'><bind xmlns='${NS.bind}'><resource>ldm</resource></bind></iq>`);
      const answer = await this.next();
      if (answer.local === 'iq' && attr(answer, 'type') === 'result') this.jid = firstChild(firstChild(answer, 'bind') ?? answer, 'jid')?.text.trim();
    }
    this.online = true;
    for (const el of this.incoming.splice(0)) this.onElement(el);
  }

  private upgrade(): Promise<void> {
    const opts = this.options;
    const plain = this.socket;
    plain.removeAllListeners('data');
    return new Promise((resolve, reject) => {
      const secure = tls.connect({
        socket: plain,
        minVersion: 'TLSv1.2',
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        servername: opts.servername ?? (opts.host && net.isIP(opts.host) === 0 ? opts.host : 'localhost'),
        // Without a CA there is nothing to verify against (libldom checks nothing either).
        rejectUnauthorized: opts.ca !== undefined && !opts.untrusted,
      });
      secure.once('secureConnect', () => {
        if (opts.ca !== undefined && opts.untrusted && !secure.authorized) {
          const err = opts.untrusted(secure.getPeerCertificate(), String(secure.authorizationError ?? 'not trusted'));
          secure.destroy();
          return reject(err);
        }
        this.socket = secure;
        this.restart();
        this.attach(secure);
        resolve();
      });
      secure.once('error', (err) => reject(new ClientError(clientMessages.tlsFailed(err.message))));
    });
  }

  /** Send one document; resolves with its response (responses come back in request order). */
  request(doc: LdmDocument | string): Promise<LdmDocument> {
    if (this.failure) return Promise.reject(this.failure);
    const text = typeof doc === 'string' ? doc : encodeDocument(doc, { indent: false });
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.send(text);
    });
  }

  /**
   * Switch this connection to a binary channel of the agent (the migration page
   * stream): send the migration-channel document naming `name` and, once the agent
   * answers success, resolve with the TLS socket, paused, whose next bytes are the
   * agent's frames (any that came with the answer are put back into it). `send` goes
   * out in the same write as the document, ahead of the answer: the agent keeps it
   * for the channel. A refusal rejects (ClientError naming the reason) and the agent
   * closes the connection. Either way the client is done with XML.
   */
  openChannel(name: string, send?: Buffer): Promise<Socket> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending.length > 0 || this.channel) return Promise.reject(new ClientError(clientMessages.channelPending()));
    const doc = encodeDocument(
      { root: 'LDM_interface', version: '1.3', commands: [{ action: CHANNEL_ACTION, options: [], arguments: [name], data: [] }] },
      { indent: false },
    );
    return new Promise((resolve, reject) => {
      this.channel = { name, resolve, reject };
      // The switch's answer never reaches deliverResponse: this entry only marks it as awaited.
      this.pending.push({ resolve: () => {}, reject });
      this.socket.write(send && send.length > 0 ? Buffer.concat([Buffer.from(doc, 'utf8'), send]) : doc);
    });
  }

  private onChannelAnswer(el: XmlElement, rest: Buffer): void {
    const channel = this.channel!;
    this.channel = undefined;
    this.pending.shift();
    const socket = this.socket;
    // The socket is the caller's now: none of our listeners may read or destroy it.
    socket.removeAllListeners('data');
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    socket.pause();
    let answer: LdmDocument | undefined;
    try {
      answer = decodeTree(el, 'response');
    } catch {
      answer = undefined;
    }
    const status = answer?.commands[0]?.response ?? answer?.response;
    if (status?.status === 'success') {
      this.failure = new ClientError(clientMessages.closed());
      if (rest.length > 0) socket.unshift(rest);
      channel.resolve(socket);
      return;
    }
    const err = new ClientError(clientMessages.channelRefused(channel.name, status?.messages.join('; ') || 'no answer'));
    this.failure = err;
    socket.destroy();
    channel.reject(err);
  }

  /** Listen for LDM_event documents (after registering with a reg-*-events request). */
  onEvent(listener: (ev: LdmDocument) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  private deliverResponse(el: XmlElement): void {
    const p = this.pending.shift();
    if (!p) return;
    try {
      p.resolve(decodeTree(el, 'response'));
    } catch (err) {
      p.reject(err instanceof XmlError ? new ClientError(clientMessages.badServerXml(err.message)) : (err as Error));
    }
  }

  private deliverEvent(el: XmlElement): void {
    let ev: LdmDocument;
    try {
      ev = decodeTree(el, 'event');
    } catch {
      return; // an event we cannot read is not worth dropping the connection
    }
    for (const l of this.eventListeners) l(ev);
  }

  private abort(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.waiter?.reject(err);
    this.waiter = undefined;
    for (const p of this.pending.splice(0)) p.reject(err);
    this.socket.destroy();
  }

  /** Close our stream and wait for the server to close its side. */
  async close(): Promise<void> {
    if (this.failure) return;
    const closed = new Promise<void>((r) => this.socket.once('close', () => r()));
    this.failure = new ClientError(clientMessages.closed());
    // Requests still waiting will get no answer now: they fail rather than hang.
    for (const p of this.pending.splice(0)) p.reject(this.failure);
    this.socket.end('</stream:stream>');
    const timer = setTimeout(() => this.socket.destroy(), 2000);
    await closed;
    clearTimeout(timer);
  }
}
