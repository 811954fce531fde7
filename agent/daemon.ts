/**
 * The daemon: everything `ldm-agent` runs until SIGTERM/SIGINT. Wires the
 * parts together (arrows point down: xmpp -> manager -> model) and prints
 * how to connect.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fsyncDir } from './atomic-file.ts';
import { ensureCerts, loadTrust, trustedFingerprints, type CertPaths } from './auth/certs.ts';
import { UserStore } from './auth/users.ts';
import type { AgentConfig } from './config.ts';
import { EventBus } from './events/bus.ts';
import { createLogger, type Logger } from './log.ts';
import { toLdmEvent } from './manager/events.ts';
import { describeBudget } from './hypervisor/budget.ts';
import { SimHypervisor } from './hypervisor/simulator.ts';
import { Guests } from './manager/guests.ts';
import { Manager, type ManagerLimits } from './manager/manager.ts';
import { MIGRATION_CHANNEL } from './migration/connect.ts';
import { holdsFromEnv, MigrationService } from './migration/service.ts';
import { Ldm } from './model/ldm.ts';
import { StateStore } from './model/store.ts';
import { daemonMessages, discoveryMessages, httpMessages } from './messages.ts';
import type { HttpDeps } from './http/deps.ts';
import type { RunningHttpServer } from './http/server.ts';
import { DISCOVERY_GROUP, startResponder } from './discovery.ts';
import { loadMachine } from './model/machine.ts';
import { XmppServer, type XmppServerOptions } from './xmpp/server.ts';

export interface RunningAgent {
  xmpp: XmppServer;
  ldm: Ldm;
  guests: Guests;
  bus: EventBus;
  users: UserStore;
  migrations: MigrationService;
  /** The web app (`--http`), or null: turned off, or its address could not be bound. */
  http: RunningHttpServer | null;
  /** The bound TCP address of the XML interface. */
  address: { host: string; port: number };
  unixPath: string;
  certPaths: CertPaths;
  stop(): Promise<void>;
}

/** Bounds a test or an embedding program may tighten; the daemon uses the defaults. */
export type ServiceTuning = Pick<
  XmppServerOptions,
  'timeouts' | 'maxConnections' | 'maxLocalConnections' | 'maxConnectionsPerAddress' | 'maxOutboundBytes' | 'throttle' | 'limits' | 'binaryChannels'
> & {
  /** Bounds on what one request document may ask for. */
  manager?: Partial<ManagerLimits>;
};

/** How often the daemon looks at STATE/users.json for changes made by `ldm-agent user`. */
const USERS_POLL_MS = 250;

/** The service's connection bounds: the configuration's, then what the caller tunes. */
function connectionOptions(config: AgentConfig, tuning: Omit<ServiceTuning, 'manager'>): Omit<ServiceTuning, 'manager'> {
  const c = config.connections ?? {};
  const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    ...defined({ maxConnections: c.maxConnections, maxLocalConnections: c.maxLocalConnections, maxConnectionsPerAddress: c.maxConnectionsPerAddress }),
    ...tuning,
    timeouts: { ...defined({ firstByteMs: c.firstByteMs, tlsMs: c.tlsMs, handshakeMs: c.handshakeMs }), ...tuning.timeouts },
    throttle: { ...defined({ maxConcurrentChecks: c.maxConcurrentLoginChecks }), ...tuning.throttle },
  };
}

export async function startAgent(
  config: AgentConfig,
  out: (line: string) => void,
  log: Logger = createLogger(),
  tuning: ServiceTuning = {},
): Promise<RunningAgent> {
  const machine = loadMachine(config.machine, config.hostname);
  const stateDir = resolve(config.state);
  if (mkdirSync(stateDir, { recursive: true, mode: 0o700 }) !== undefined) await fsyncDir(dirname(stateDir));

  const certs = await ensureCerts(config.certs, { hostnames: [machine.hostname, 'localhost'], ips: [config.listen.host] });
  for (const file of certs.created) out(daemonMessages.created(file));
  for (const name of certs.uncovered) log.warn(daemonMessages.uncovered(name, certs.paths.server));

  const users = await UserStore.open(stateDir);
  const bus = new EventBus();
  const hypervisor = new SimHypervisor({ memoryBudget: config.guestMemory });
  const guests = new Guests(log.child('guests'), hypervisor);
  const ldm = await Ldm.open(
    machine,
    new StateStore(stateDir),
    (ev) => {
      // Domain events are worth a log line: a domain-reset at start has no subscriber yet.
      if (ev.class === 'domain') log.info('domain event', { event: ev.action, domain: ev.domain });
      bus.publish(toLdmEvent(ev));
    },
    guests,
    log.child('model'),
  );
  const migrations = new MigrationService({
    ldm,
    hypervisor,
    tuning: config.migration,
    certs: certs.paths,
    hostname: machine.hostname,
    log,
    holds: holdsFromEnv(process.env),
  });
  const { manager: managerLimits, binaryChannels, ...serviceTuning } = tuning;
  // The web app's metrics listen to every answered command (agent/http/metrics.ts).
  const requestListeners = new Set<(action: string, status: 'success' | 'failure', seconds: number) => void>();
  const manager = new Manager({
    ldm,
    log,
    limits: managerLimits,
    migrations,
    observe: (action, status, seconds) => {
      for (const l of requestListeners) l(action, status, seconds);
    },
  });
  const unixPath = join(stateDir, 'ldmd.sock');
  const xmpp = new XmppServer({
    listen: config.listen,
    unixPath,
    localTcp: config.localTcp,
    domain: machine.hostname,
    tls: {
      key: readFileSync(certs.paths.serverKey, 'utf8'),
      cert: readFileSync(certs.paths.server, 'utf8'),
      ca: loadTrust(config.certs),
      fingerprints: trustedFingerprints(config.certs),
    },
    users,
    manager,
    bus,
    log,
    ...connectionOptions(config, serviceTuning),
    binaryChannels: (name) => (name === MIGRATION_CHANNEL ? migrations.channel : binaryChannels?.(name)),
  });
  await xmpp.start();
  migrations.start();
  // Removals and role changes reach open sessions within a poll.
  const stopWatchingUsers = users.watch(
    USERS_POLL_MS,
    () => xmpp.applyUsers((name) => users.cachedRole(name)),
    (err) => log.error('cannot read the users file; the users read before stay in force', { file: users.file, error: err.message }),
  );
  const bound = xmpp.tcpAddress()!;
  const strands = machine.cpu.cores * machine.cpu.threadsPerCore;
  out(daemonMessages.banner(machine.hostname, machine.platform, strands));
  out(describeBudget(hypervisor.memoryBudget.limit, config.guestMemory !== undefined));
  out(daemonMessages.listening(bound.host, bound.port, config.localTcp));
  out(daemonMessages.localSocket(unixPath));
  const http = config.http ? await startWeb(
        config,
        {
          ldm,
          migrations,
          bus,
          users,
          log: log.child('http'),
          onRequest: (listener) => (requestListeners.add(listener), () => void requestListeners.delete(listener)),
          connections: () => xmpp.connectionCount,
        },
        certs.paths,
        log,
      ) : null;
  if (http) out(httpMessages.listening(http.tls ? 'https' : 'http', http.address.host, http.address.port));
  // Discovery announces the bound XML address; it never stops the agent (a warning at worst).
  const discovery = config.discovery
    ? await startResponder({ port: config.discoveryPort, version: machine.managerVersion, hostname: machine.hostname, xml: bound, log: log.child('discovery') })
    : undefined;
  if (discovery) out(discoveryMessages.answering(DISCOVERY_GROUP, discovery.port, discovery.multicast));
  const names = (await users.list()).map((u) => u.name);
  out(names.length > 0 ? daemonMessages.users(names) : daemonMessages.noUsers());
  out(daemonMessages.howToConnect(bound.host, bound.port, certs.paths.ca));
  return {
    xmpp,
    ldm,
    guests,
    bus,
    users,
    address: bound,
    unixPath,
    certPaths: certs.paths,
    migrations,
    http,
    stop: async () => {
      stopWatchingUsers();
      await http?.close();
      await discovery?.close();
      // Running migrations roll back first: their guests run on here, their targets clean up.
      await migrations.close();
      await xmpp.close();
      await guests.close();
    },
  };
}

/** The web app; a port it cannot bind is a warning, never a reason to stop the agent (the XML interface is the service). */
async function startWeb(config: AgentConfig, deps: HttpDeps, certs: CertPaths, log: Logger): Promise<RunningHttpServer | null> {
  const listen = config.http!;
  try {
    const tls = config.httpTls ? { key: readFileSync(certs.serverKey, 'utf8'), cert: readFileSync(certs.server, 'utf8') } : undefined;
    // Loaded on use: express and prom-client cost every `ldm-agent --help` a start-up otherwise.
    const { createHttpServer } = await import('./http/server.ts');
    return await createHttpServer(deps, { listen, ...(tls ? { tls } : {}) });
  } catch (err) {
    log.warn(httpMessages.cannotListen(listen.host, listen.port, (err as Error).message));
    return null;
  }
}
