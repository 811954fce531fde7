/**
 * Discovery of managers (protocol.md section 9): the agent answers discovery
 * requests on UDP multicast group 239.129.9.27 port 64535, and `ldm discover`
 * asks. This module holds the wire format (both sides use it) and the agent's
 * responder.
 *
 * A message is Oracle's `multicast_msg_t`: four 32-bit words (version 1, magic
 * 92792004, type, reserved) and a payload; a discovery response carries the
 * manager's version (32 bytes), its host name (256 bytes, Solaris MAXHOSTNAMELEN),
 * its IPv4 address (4 bytes) and its XML port (32 bits). The guides do not name a
 * byte order: SPARC is big-endian, so everything is in network order.
 *
 * Answers go back to the sender's address and port (unicast): the sender is the
 * one that asked, and a client that listens on the socket it sent from (the
 * guides' procedure) hears it. The same socket answers requests sent to the port
 * directly, so discovery also works where multicast does not.
 */
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { discoveryMessages as m } from './messages.ts';
import type { Logger } from './log.ts';

export const DISCOVERY_GROUP = '239.129.9.27';
export const DISCOVERY_PORT = 64535;
export const MULTI_VERSION = 1;
export const MULTI_MAGIC = 92792004;

/** Oracle's message types: 0 and 1 are the MAC collision detection that shares the group. */
export const MsgType = { send: 0, response: 1, discoveryRequest: 2, discoveryResponse: 3 } as const;

const HEADER_BYTES = 16;
const VERSION_BYTES = 32;
const HOSTNAME_BYTES = 256;
/** Header and discovery payload: sizeof(multicast_msg_t) with Solaris's MAXHOSTNAMELEN. */
export const MESSAGE_BYTES = HEADER_BYTES + VERSION_BYTES + HOSTNAME_BYTES + 4 + 4;
/**
 * Requests longer than this are not ours. Room above MESSAGE_BYTES for a client built
 * with another platform's struct padding; far below anything worth amplifying.
 */
export const MAX_REQUEST_BYTES = 512;

/** What one manager says about itself. */
export interface ManagerInfo {
  version: string;
  hostname: string;
  address: string;
  port: number;
}

function header(type: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  buf.writeUInt32BE(MULTI_VERSION, 0);
  buf.writeUInt32BE(MULTI_MAGIC, 4);
  buf.writeUInt32BE(type, 8);
  return buf;
}

/** The message type of a datagram in our format, or undefined for anything else. */
export function messageType(buf: Buffer): number | undefined {
  if (buf.length < HEADER_BYTES) return undefined;
  if (buf.readUInt32BE(0) !== MULTI_VERSION || buf.readUInt32BE(4) !== MULTI_MAGIC) return undefined;
  return buf.readUInt32BE(8);
}

/** A discovery request, the size of the whole C structure (payload zeroed), as a C client sends it. */
export function encodeRequest(): Buffer {
  return header(MsgType.discoveryRequest, MESSAGE_BYTES);
}

/** Whether a datagram is a discovery request we answer (bounded in size, our header, type 2). */
export function isRequest(buf: Buffer): boolean {
  return buf.length <= MAX_REQUEST_BYTES && messageType(buf) === MsgType.discoveryRequest;
}

/** A C string in a fixed field: cut to leave room for its NUL. */
function writeCString(buf: Buffer, text: string, offset: number, size: number): void {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length > size - 1) bytes = bytes.subarray(0, size - 1);
  bytes.copy(buf, offset);
}

function readCString(buf: Buffer, offset: number, size: number): string {
  const field = buf.subarray(offset, offset + size);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? size : end).toString('utf8');
}

export function encodeResponse(info: ManagerInfo): Buffer {
  const buf = header(MsgType.discoveryResponse, MESSAGE_BYTES);
  let at = HEADER_BYTES;
  writeCString(buf, info.version, at, VERSION_BYTES);
  writeCString(buf, info.hostname, (at += VERSION_BYTES), HOSTNAME_BYTES);
  at += HOSTNAME_BYTES;
  info.address.split('.').forEach((octet, i) => buf.writeUInt8(Number(octet), at + i));
  buf.writeUInt32BE(info.port, at + 4);
  return buf;
}

/** A discovery response, or undefined for anything else (other types, short or malformed datagrams). */
export function decodeResponse(buf: Buffer): ManagerInfo | undefined {
  if (buf.length < MESSAGE_BYTES || buf.length > MAX_REQUEST_BYTES || messageType(buf) !== MsgType.discoveryResponse) return undefined;
  const at = HEADER_BYTES + VERSION_BYTES + HOSTNAME_BYTES;
  const port = buf.readUInt32BE(at + 4);
  if (port < 1 || port > 65535) return undefined;
  return {
    version: readCString(buf, HEADER_BYTES, VERSION_BYTES),
    hostname: readCString(buf, HEADER_BYTES + VERSION_BYTES, HOSTNAME_BYTES),
    address: [...buf.subarray(at, at + 4)].join('.'),
    port,
  };
}

const isIPv4 = (a: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a);
const isLoopback4 = (a: string) => a.startsWith('127.');
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

interface Interface4 {
  address: string;
  netmask: string;
  internal: boolean;
}

function interfaces4(): Interface4[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i): i is NonNullable<typeof i> => i !== undefined && i.family === 'IPv4');
}

const toInt = (a: string) => a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);

/**
 * The IPv4 address to announce to a requester at `from`, or undefined to stay
 * silent: an agent whose XML interface is on loopback only answers requests from
 * its own host (a remote requester could not reach it); one listening on every
 * address announces the address of the interface on the requester's network.
 */
export function announcedAddress(xmlHost: string, from: string, ifaces: Interface4[] = interfaces4()): string | undefined {
  const fromHere = isLoopback4(from) || ifaces.some((i) => i.address === from);
  if (isIPv4(xmlHost) && !WILDCARDS.has(xmlHost)) return isLoopback4(xmlHost) && !fromHere ? undefined : xmlHost;
  if (!WILDCARDS.has(xmlHost)) return undefined; // an IPv6 address cannot be announced in an IPv4 field
  if (isLoopback4(from)) return '127.0.0.1';
  if (fromHere) return from;
  const sameNet = ifaces.find((i) => !i.internal && ((toInt(i.address) ^ toInt(from)) & toInt(i.netmask)) === 0);
  return (sameNet ?? ifaces.find((i) => !i.internal))?.address;
}

export interface ResponderOptions {
  group?: string;
  port?: number;
  /** What the answers say: the manager's version and host name, and the XML interface's bound address. */
  version: string;
  hostname: string;
  xml: { host: string; port: number };
  log: Logger;
  /** Answers per second (and burst); beyond it requests are dropped, so a flood cannot turn the agent into a reflector. */
  answersPerSecond?: number;
}

export interface Responder {
  /** The UDP port it listens on. */
  port: number;
  /** Whether it joined the multicast group on at least one interface (else it answers only requests sent to its port). */
  multicast: boolean;
  close(): Promise<void>;
}

/**
 * Listen for discovery requests. Never throws: a port it cannot bind (another
 * program holds it without sharing) or a group it cannot join is a warning, and
 * the agent goes on without (resolves undefined when nothing could be bound).
 */
export async function startResponder(o: ResponderOptions): Promise<Responder | undefined> {
  const group = o.group ?? DISCOVERY_GROUP;
  const port = o.port ?? DISCOVERY_PORT;
  const rate = o.answersPerSecond ?? 20;
  // reuseAddr: several agents on one host (the demo, the tests) share the port; each gets the group's datagrams.
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const bound = await new Promise<Error | undefined>((resolve) => {
    socket.once('error', resolve);
    socket.bind(port, () => {
      socket.off('error', resolve);
      resolve(undefined);
    });
  });
  if (bound) {
    o.log.warn(m.cannotBind(port, bound.message));
    socket.close();
    return undefined;
  }
  socket.on('error', (err) => o.log.warn(m.socketError(err.message)));

  // Join on every IPv4 interface, loopback included, so requests from this host and from each attached network arrive.
  let joined = 0;
  for (const i of interfaces4()) {
    try {
      socket.addMembership(group, i.address);
      joined++;
    } catch (err) {
      o.log.debug(m.cannotJoinOn(group, i.address, (err as Error).message));
    }
  }
  if (joined === 0) o.log.warn(m.noMulticast(group, port));

  let tokens = rate;
  let refilled = Date.now();
  socket.on('message', (msg, from) => {
    if (!isRequest(msg) || from.family !== 'IPv4') return;
    const now = Date.now();
    tokens = Math.min(rate, tokens + ((now - refilled) / 1000) * rate);
    refilled = now;
    if (tokens < 1) return;
    const address = announcedAddress(o.xml.host, from.address);
    if (address === undefined) return;
    tokens -= 1;
    const answer = encodeResponse({ version: o.version, hostname: o.hostname, address, port: o.xml.port });
    socket.send(answer, from.port, from.address, (err) => {
      if (err) o.log.debug(m.cannotAnswer(from.address, err.message));
    });
  });

  return {
    port,
    multicast: joined > 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
