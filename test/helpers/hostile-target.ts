/**
 * A hostile migration target in the test process: the agent's own XML service
 * (agent/xmpp/server.ts: STARTTLS, SASL PLAIN, the migration-channel switch, all real)
 * with a certificate of its own, whose `migration` channel is handed to a script the
 * test sets per case instead of to the agent's TargetMigration. A real source agent
 * (a child process, test/helpers/cluster.ts) that trusts its CA logs in and migrates
 * to it as to any agent; the script then lies, writes garbage, stops reading or goes
 * silent, and the test checks how the source fails.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { ensureCerts } from '../../agent/auth/certs.ts';
import { EventBus } from '../../agent/events/bus.ts';
import { createLogger } from '../../agent/log.ts';
import type { Manager } from '../../agent/manager/manager.ts';
import { MIGRATION_CHANNEL } from '../../agent/migration/connect.ts';
import { XmppServer } from '../../agent/xmpp/server.ts';
import { ADMIN, type AgentProc } from './cluster.ts';
import { HostilePeer } from './hostile-peer.ts';

type Teardown = { teardown(fn: () => unknown): void };

/** What the target does with one migration channel; it may throw (the channel is then closed). */
export type TargetScript = (peer: HostilePeer) => Promise<void>;

export interface HostileTarget {
  port: number;
  /** host:port as the source's messages name the target. */
  address: string;
  /** The script for the next channels (each channel runs the script set when it opened). */
  script: TargetScript;
  /** Channels opened so far, and the errors their scripts ended with (none: undefined). */
  readonly channels: { peer: HostilePeer; done: Promise<unknown> }[];
  /** What the service logged (warnings and errors). */
  readonly log: string[];
  /** Make `source` trust this target's certificate (as `ldm-agent certs trust` would). */
  trustedBy(source: AgentProc): void;
}

export async function startHostileTarget(t: Teardown): Promise<HostileTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-hostile-target-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certs = await ensureCerts(join(dir, 'certs'), { hostnames: ['hostile', 'localhost'], ips: ['127.0.0.1'] });
  const log: string[] = [];
  const channels: HostileTarget['channels'] = [];
  const target: HostileTarget = {
    port: 0,
    address: '',
    script: async () => {},
    channels,
    log,
    trustedBy(source) {
      copyFileSync(certs.paths.ca, join(source.certs.trustDir, 'hostile-ca.pem'));
    },
  };
  const server = new XmppServer({
    listen: { host: '127.0.0.1', port: 0 },
    unixPath: null,
    localTcp: false,
    domain: 'hostile',
    tls: { key: readFileSync(certs.paths.serverKey, 'utf8'), cert: readFileSync(certs.paths.server, 'utf8'), ca: [readFileSync(certs.paths.ca, 'utf8')], fingerprints: new Set() },
    users: {
      verify: async (name, password) => (name === ADMIN.user && password === ADMIN.password ? { name, role: 'write' } : null),
      role: async (name) => (name === ADMIN.user ? 'write' : null),
    },
    // The source sends no LDM document but the switch, which the connection answers itself.
    manager: {} as Manager,
    bus: new EventBus(),
    log: createLogger('warn', 'hostile-target', (line) => log.push(line)),
    binaryChannels: (name) =>
      name === MIGRATION_CHANNEL
        ? (socket: Socket, rest: Buffer) => {
            const peer = new HostilePeer(socket, rest);
            const script = target.script;
            const done = script(peer).then(
              () => undefined,
              (err: unknown) => {
                peer.close();
                return err;
              },
            );
            channels.push({ peer, done });
          }
        : undefined,
  });
  await server.start();
  t.teardown(async () => {
    for (const c of channels) c.peer.close();
    await server.close();
  });
  target.port = server.tcpAddress()!.port;
  target.address = `127.0.0.1:${target.port}`;
  return target;
}

/**
 * The target's part played straight up to a point: the checks pass (any plan: the source
 * does not read it), the prepare step succeeds. Resolves after 'prepared' is sent.
 */
export async function acceptUpToPrepare(peer: HostilePeer): Promise<void> {
  await peer.expect('offer');
  await peer.say({ t: 'checked', ok: true, plan: {} });
  await peer.expect('prepare');
  await peer.say({ t: 'prepared' });
}

/** Answer passes and pings straight until the source sends `final`; that message. */
export async function acceptUntilFinal(peer: HostilePeer): Promise<Record<string, unknown>> {
  for (;;) {
    const m = await peer.next();
    if (m['t'] === 'pass') await peer.say({ t: 'passed', n: m['n'] });
    else if (m['t'] === 'ping') await peer.say({ t: 'pong' });
    else if (m['t'] === 'final') return m;
    else if (m['t'] !== 'progress') throw new Error(`hostile target: unexpected "${String(m['t'])}"`);
  }
}
