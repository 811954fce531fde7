/**
 * `ldm discover [-p] [-t SECONDS] [--address ADDR] [--port PORT]`: list the Logical
 * Domains Managers that answer a discovery request (protocol.md section 9).
 *
 * Oracle's ldm has no such subcommand (the guides give only the protocol), so the
 * layout is ours in Oracle's style: an upper-case header and printf columns like
 * `ldm list` ("%-16s %-16s %-6s %s", a long value pushes the rest right), and `-p`
 * lines like `ldm list -p`. Exit status 0 when at least one manager answered, 1
 * when none did (so a script can test for "any manager there").
 */
import dgram from 'node:dgram';
import { DISCOVERY_GROUP, DISCOVERY_PORT, decodeResponse, encodeRequest, type ManagerInfo } from '../../discovery.ts';
import { ldmMessages as m } from '../../messages.ts';
import { UsageError } from '../io.ts';
import type { LdmCommand } from './command.ts';
import { CommandError, type LdmContext } from './context.ts';

const DEFAULT_WAIT_S = 2;
const MAX_WAIT_S = 60;
/** Distinct answers kept: a bound on what a flood of forged answers can make us hold. */
const MAX_MANAGERS = 1024;

interface DiscoverOptions {
  parseable: boolean;
  waitMs: number;
  address: string;
  port: number;
}

function parseArgs(args: string[]): DiscoverOptions {
  const o: DiscoverOptions = { parseable: false, waitMs: DEFAULT_WAIT_S * 1000, address: DISCOVERY_GROUP, port: DISCOVERY_PORT };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === '-p') {
      o.parseable = true;
      continue;
    }
    if (flag !== '-t' && flag !== '--address' && flag !== '--port') throw new UsageError(m.discoverUnknownArgument(args[i]!));
    const value = inline ?? args[++i];
    if (value === undefined || value === '') throw new UsageError(m.optionNeedsValue(flag));
    if (flag === '-t') {
      const s = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
      if (!(s >= 0.1 && s <= MAX_WAIT_S)) throw new UsageError(m.discoverBadWait(value, MAX_WAIT_S));
      o.waitMs = Math.round(s * 1000);
    } else if (flag === '--port') {
      const port = /^\d{1,5}$/.test(value) ? Number(value) : 0;
      if (port < 1 || port > 65535) throw new UsageError(m.discoverBadPort(value));
      o.port = port;
    } else {
      if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(value) || value.split('.').some((n) => Number(n) > 255)) throw new UsageError(m.discoverBadAddress(value));
      o.address = value;
    }
  }
  return o;
}

const isMulticast = (a: string) => {
  const first = Number(a.split('.')[0]);
  return first >= 224 && first <= 239;
};

/** A sender's words go to a terminal: anything but printable text shows as `?`. */
const printable = (text: string) => text.replace(/[^\x20-\x7e\u00a0-\uffff]|[\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '?');

/**
 * Send one request and collect the distinct answers until the wait is over. To the
 * group it goes out the default interface, looped back to this host too; where that
 * route does not exist (a host without a network), out the loopback interface.
 */
async function collect(o: DiscoverOptions): Promise<ManagerInfo[]> {
  const socket = dgram.createSocket('udp4');
  const found = new Map<string, ManagerInfo>();
  socket.on('message', (msg) => {
    const info = decodeResponse(msg);
    if (!info || found.size >= MAX_MANAGERS) return;
    found.set(`${info.hostname}\0${info.address}\0${info.port}`, info);
  });
  const failed = new Promise<Error>((resolve) => socket.on('error', resolve));
  try {
    const notBound = await Promise.race([new Promise<undefined>((resolve) => socket.bind(0, () => resolve(undefined))), failed]);
    if (notBound) throw new CommandError(m.discoverCannotSend(`${o.address}:${o.port}`, notBound.message));
    const send = () => new Promise<Error | null>((resolve) => socket.send(encodeRequest(), o.port, o.address, (err) => resolve(err)));
    if (isMulticast(o.address)) {
      // Hops: like the manager's default, requests stay on the attached subnet.
      socket.setMulticastTTL(1);
      socket.setMulticastLoopback(true);
    }
    let err = await send();
    if (err && isMulticast(o.address)) {
      socket.setMulticastInterface('127.0.0.1');
      err = await send();
    }
    if (err) throw new CommandError(m.discoverCannotSend(`${o.address}:${o.port}`, err.message));
    const outcome = await Promise.race([new Promise<undefined>((resolve) => setTimeout(resolve, o.waitMs)), failed]);
    if (outcome) throw new CommandError(m.discoverCannotSend(`${o.address}:${o.port}`, outcome.message));
  } finally {
    socket.close();
  }
  const ip = (a: string) => a.split('.').map((n) => n.padStart(3, '0')).join('.');
  return [...found.values()].sort((a, b) => a.hostname.localeCompare(b.hostname) || ip(a.address).localeCompare(ip(b.address)) || a.port - b.port);
}

const pad = (text: string, width: number) => text.padEnd(width);

function table(managers: ManagerInfo[]): string[] {
  const row = (host: string, address: string, port: string, version: string) => `${pad(host, 16)} ${pad(address, 16)} ${pad(port, 6)} ${version}`.trimEnd();
  return [row('HOST', 'ADDRESS', 'PORT', 'VERSION'), ...managers.map((x) => row(printable(x.hostname), x.address, String(x.port), printable(x.version)))];
}

function parseable(managers: ManagerInfo[]): string[] {
  // `|` and `=` separate fields: a host name carrying them would break a parser, so they are escaped like any oddity.
  const field = (text: string) => printable(text).replace(/[|=]/g, '?');
  return managers.map((x) => `MANAGER|host=${field(x.hostname)}|address=${x.address}|port=${x.port}|version=${field(x.version)}`);
}

export const commands: LdmCommand[] = [
  {
    names: ['discover'],
    usage: 'discover [-p] [-t SECONDS] [--address ADDR] [--port PORT]',
    async run(ctx: LdmContext, args: string[]): Promise<number> {
      const o = parseArgs(args);
      const managers = await collect(o);
      if (managers.length === 0) {
        ctx.err(m.discoverNone(`${o.address}:${o.port}`, o.waitMs / 1000));
        return 1;
      }
      for (const line of o.parseable ? parseable(managers) : table(managers)) ctx.out(line);
      return 0;
    },
  },
];
