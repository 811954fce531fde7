/**
 * Several agents as child processes on loopback, for the migration tests: each in
 * its own temporary directory with its own machine file (the built-in machine with
 * a distinct hostname and host ID, plus per-test overrides), certificates, users
 * and optional `--config`; the certificates cross-trusted unless a test asks not.
 * Plus what those tests do over and over: logged-in clients, set-up requests,
 * listings read into plain objects, migrate-domain, polling, a TCP proxy that can
 * cut or refuse connections, and stopping, killing and restarting an agent on its
 * same directory and port.
 *
 * Certificates and users are made in-process with the agent's own functions
 * (ensureCerts, UserStore) before the child starts: the same files `ldm-agent certs
 * init` and `ldm-agent user add` write, without two extra tsx start-ups per agent.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certPaths, ensureCerts, type CertPaths } from '../../agent/auth/certs.ts';
import { UserStore, type Role } from '../../agent/auth/users.ts';
import { DEFAULT_MACHINE_FILE } from '../../agent/model/machine.ts';
import type { Content, Item, LdmDocument } from '../../agent/xml/document.ts';
import { LdmClient } from '../../agent/xmpp/client.ts';
import { AGENT_ARGS } from './daemon.ts';
import { cpu, data, memory, request, variable } from './requests.ts';
import { messages, ok } from './session.ts';

type Teardown = { teardown(fn: () => unknown): void };

export const ADMIN = { user: 'admin', password: 'admin-secret' } as const;
export const VIEWER = { user: 'viewer', password: 'viewer-secret' } as const;

export interface AgentOptions {
  /** Keys of the machine file over the built-in machine (`cpu` is merged key by key). */
  machine?: Record<string, unknown>;
  /** The `--config` file's content, e.g. `{ migration: { maxBandwidth: 8e6 } }`. */
  config?: Record<string, unknown>;
  /** Extra environment, e.g. `{ LDM_AGENT_TEST_HOLD: 'precopy' }`. */
  env?: Record<string, string>;
  /** Extra command-line arguments. */
  args?: string[];
  /** Users besides admin (write) and viewer (read). */
  users?: [name: string, role: Role, password: string][];
  /** Run the agent in this network namespace (`ip netns exec`), listening on every address of it. */
  netns?: string;
  /** The address this test reaches the agent at (default 127.0.0.1; in a namespace, one of its addresses). */
  host?: string;
}

export interface PairOptions {
  a?: AgentOptions;
  b?: AgentOptions;
  /** false: neither trusts the other's CA (default: each trusts the other's). */
  trust?: boolean;
}

/** One ldom_info of a listing: its properties by key. */
export type Props = Record<string, string>;

/** A migration as list-migrations shows it: the domain's name on this agent and its properties. */
export type MigrationRow = Props & { domain: string };

/** A progress event as a subscriber gets it. */
export interface ProgressEvent {
  domain: string;
  progress: number;
  status: string;
  source: string;
}

export interface MigrateOptions {
  /** Name on the target (rename); default the same name. */
  as?: string;
  /** Tokens for <options>: `-n`, `-f`, `-c`. */
  options?: string[];
  /** Login on the target; default admin. Ignored with `-c`. */
  user?: string;
  password?: string;
  /** Where the source connects (default the target's XML port; a proxy's port for fault tests). */
  port?: number;
  /** migrate-domain's whole target, host:port (default 127.0.0.1 and `port`): another network's address of the target. */
  address?: string;
  /** The client that sends the request (default the source's admin session). */
  client?: LdmClient;
}

/** The outcome of one migrate-domain: the object's status and its message lines. */
export interface MigrateResult {
  ok: boolean;
  /** The object's (the <data>'s) response messages. */
  lines: string[];
  /** Every message of the response, for diagnostics. */
  all: string[];
  doc: LdmDocument;
}

export interface DomainSpec {
  vcpus?: number;
  memory?: string;
  mau?: number;
  /** Disks: [disk name, volume, vds]; default one disk on vol1@primary-vds0. */
  disks?: [name: string, volume: string, service: string][];
  /** Networks: [vnet name, vswitch]; default one on primary-vsw0. */
  vnets?: [name: string, service: string][];
  /** Domain variables (sim-working-set, sim-dirty-rate, sim-fill, sim-state, sim-os, ...). */
  vars?: Record<string, string>;
}

export interface ServicesSpec {
  vds?: string | null;
  volumes?: string[];
  vsw?: string | null;
  vcc?: [number, number] | null;
}

export class AgentProc {
  proc: ChildProcessWithoutNullStreams | undefined;
  port = 0;
  private out = '';
  private err = '';
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  private adminClient: LdmClient | undefined;
  private readonly clients = new Set<LdmClient>();
  readonly certs: CertPaths;
  readonly machineFile: string;
  /** The machine's host ID (distinct per agent); set when the directory is prepared. */
  hostid = '';

  constructor(
    readonly name: string,
    readonly dir: string,
    private readonly opts: AgentOptions,
  ) {
    this.certs = certPaths(join(dir, 'certs'));
    this.machineFile = join(dir, 'machine.json');
  }

  /** Write the machine file again (the built-in machine, this agent's name and host ID, then `over`): read at the next start. */
  writeMachine(over: Record<string, unknown> = {}): void {
    writeFileSync(this.machineFile, JSON.stringify(machineJson(this.name, this.hostid, over), null, 2));
  }

  /** Stop (SIGTERM) and start again on the same directory and port, with the machine file rewritten when `machine` is given. */
  async restart(machine?: Record<string, unknown>): Promise<void> {
    await this.stop();
    if (machine) this.writeMachine(machine);
    await this.start();
  }

  get state(): string {
    return join(this.dir, 'var');
  }

  /** Where this test reaches the agent. */
  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  /** host:port as migrate-domain's `target` names this agent. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /**
   * Start the agent (again) on its directory: the same port once it had one.
   * `env` and `args` replace the options' for this start only when given.
   */
  async start(over: { env?: Record<string, string>; args?: string[] } = {}): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const args = [
      ...AGENT_ARGS,
      '--listen',
      `${this.opts.netns ? '0.0.0.0' : '127.0.0.1'}:${this.port}`,
      '--http',
      'off',
      '--state',
      this.state,
      '--certs',
      join(this.dir, 'certs'),
      '--hostname',
      this.name,
      '--machine',
      this.machineFile,
      ...(this.opts.config ? ['--config', join(this.dir, 'config.json')] : []),
      ...(over.args ?? this.opts.args ?? []),
    ];
    const env = { ...process.env, LDM_LOG_LEVEL: 'info', ...(over.env ?? this.opts.env ?? {}) };
    // `ip netns exec` execs the program in the namespace: the child's pid is the agent's.
    const proc = this.opts.netns
      ? spawn('ip', ['netns', 'exec', this.opts.netns, process.execPath, ...args], { cwd: this.dir, env })
      : spawn(process.execPath, args, { cwd: this.dir, env });
    this.proc = proc;
    this.out = '';
    this.err = '';
    proc.stdout.on('data', (d: Buffer) => (this.out += d));
    proc.stderr.on('data', (d: Buffer) => (this.err += d));
    this.exit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    this.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start:\n${this.out}${this.err}`)), 30_000);
      const check = () => {
        const m = /XML interface listening on [^\s]+:(\d+)/.exec(this.out);
        if (m && /^try: /m.test(this.out)) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      proc.stdout.on('data', check);
      proc.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited at start:\n${this.out}${this.err}`));
      });
    });
  }

  private forgetClients(): void {
    for (const c of this.clients) c.close().catch(() => {});
    this.clients.clear();
    this.adminClient = undefined;
  }

  /** SIGTERM and wait for the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.forgetClients();
    if (this.running) this.proc!.kill('SIGTERM');
    return this.exit;
  }

  /** SIGKILL (no clean-up) and wait for the exit. */
  async kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.forgetClients();
    if (this.running) this.proc!.kill('SIGKILL');
    return this.exit;
  }

  /** A new session, logged in with a password (default admin), closed at teardown or stop. */
  async client(user: string = ADMIN.user, password: string = user === ADMIN.user ? ADMIN.password : VIEWER.password): Promise<LdmClient> {
    const c = await LdmClient.connect({
      host: this.host,
      port: this.port,
      auth: { kind: 'password', user, password },
      ca: readFileSync(this.certs.ca, 'utf8'),
      servername: 'localhost',
    });
    this.clients.add(c);
    return c;
  }

  /** The shared admin session (made on first use, again after a restart). */
  async admin(): Promise<LdmClient> {
    this.adminClient ??= await this.client();
    return this.adminClient;
  }

  async request(xml: string): Promise<LdmDocument> {
    return (await this.admin()).request(xml);
  }

  /** A request that must succeed; a refusal throws with its texts, naming the agent. */
  async must(xml: string): Promise<LdmDocument> {
    const r = await this.request(xml);
    if (!ok(r)) throw new Error(`${this.name} refused: ${messages(r).join('; ')}\n${xml}`);
    return r;
  }

  /** A request that must fail: its message lines, joined. */
  async refusal(xml: string): Promise<string> {
    const r = await this.request(xml);
    if (ok(r)) throw new Error(`${this.name} accepted what it should refuse:\n${xml}`);
    return messages(r).join('; ');
  }

  /** Services on the primary: a vds with volumes, a vswitch, a console concentrator. */
  async services(spec: ServicesSpec = {}): Promise<void> {
    const vds = spec.vds === undefined ? 'primary-vds0' : spec.vds;
    if (vds !== null) {
      await this.must(request('add-vdiskserver', data(null, { type: 'vds', props: { service_name: vds } })));
      for (const vol of spec.volumes ?? ['vol1'])
        await this.must(request('add-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: vol, service_name: vds, block_dev: `/dev/zvol/dsk/ldoms/${vol}` } })));
    }
    const vsw = spec.vsw === undefined ? 'primary-vsw0' : spec.vsw;
    if (vsw !== null) await this.must(request('add-vswitch', data('primary', { type: 'vsw', props: { service_name: vsw, dev_path: 'net0' } })));
    const vcc = spec.vcc === undefined ? [5000, 5100] : spec.vcc;
    if (vcc !== null) await this.must(request('add-vconscon', data('primary', { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: String(vcc[0]), max_port: String(vcc[1]) } })));
  }

  /** add-domain with its resources and variables (inactive). */
  async addDomain(name: string, spec: DomainSpec = {}): Promise<void> {
    await this.must(request('add-domain', data(name)));
    await this.must(request('add-vcpu', data(name, cpu(spec.vcpus ?? 8))));
    await this.must(request('add-memory', data(name, memory(spec.memory ?? '1G'))));
    if (spec.mau) await this.must(request('add-mau', data(name, { type: 'mau', rasd: { AllocationUnits: String(spec.mau) } })));
    for (const [disk, vol, vds] of spec.disks ?? [['vdisk0', 'vol1', 'primary-vds0']])
      await this.must(request('add-vdisk', data(name, { type: 'disk', props: { vdisk_name: disk, vol_name: vol, service_name: vds } })));
    for (const [vnet, vsw] of spec.vnets ?? [['vnet0', 'primary-vsw0']])
      await this.must(request('add-vnet', data(name, { type: 'network', props: { vnet_name: vnet, service_name: vsw } })));
    for (const [k, v] of Object.entries(spec.vars ?? {})) await this.must(request('add-variable', data(name, variable(k, v))));
  }

  async bind(name: string): Promise<void> {
    await this.must(request('bind-domain', data(name)));
  }

  async startDomain(name: string): Promise<void> {
    await this.must(request('start-domain', data(name)));
  }

  /** add-domain, then bind and start as `state` asks. */
  async domain(name: string, state: 'inactive' | 'bound' | 'active', spec: DomainSpec = {}): Promise<void> {
    await this.addDomain(name, spec);
    if (state !== 'inactive') await this.bind(name);
    if (state === 'active') await this.startDomain(name);
  }

  /** The ldom_info properties of list-domain NAME, or undefined when the agent has no such domain. */
  async listDomain(name: string): Promise<Props | undefined> {
    const r = await this.request(request('list-domain', data(name)));
    if (!ok(r)) return undefined;
    const info = itemsOf(contentOf(r, name), 'ldom_info')[0];
    if (!info) return undefined;
    const props: Props = Object.fromEntries(info.props);
    if (info.uuid !== undefined) props['uuid'] ??= info.uuid;
    return props;
  }

  /** The names of every domain this agent lists. */
  async domainNames(): Promise<string[]> {
    const r = await this.must(request('list-domain'));
    return r.commands[0]!.data.flatMap((d) => d.envelope?.contents.map((c) => c.id) ?? []);
  }

  /** list-variable NAME as name -> value. */
  async variables(name: string): Promise<Props> {
    const r = await this.must(request('list-variable', data(name)));
    return Object.fromEntries(itemsOf(contentOf(r, name), 'var').map((i) => [i.props.get('name')!, i.props.get('value') ?? '']));
  }

  /** list-constraints NAME: its Content. */
  async constraints(name: string): Promise<Content> {
    const r = await this.must(request('list-constraints', data(name)));
    const c = contentOf(r, name);
    if (!c) throw new Error(`${this.name}: no constraints of ${name}`);
    return c;
  }

  /** list-migrations: one row per migration (running, and the last finished). */
  async migrations(): Promise<MigrationRow[]> {
    const r = await this.must(request('list-migrations'));
    return r.commands[0]!.data.flatMap((d) =>
      (d.envelope?.contents ?? []).map((c) => ({ ...Object.fromEntries(itemsOf(c, 'ldom_info')[0]?.props ?? []), domain: c.id })),
    );
  }

  /** The latest row of list-migrations for `domain` (its name on this agent). */
  async migration(domain: string): Promise<MigrationRow | undefined> {
    return (await this.migrations()).filter((m) => m.domain === domain).at(-1);
  }

  /** A new session registered for progress events, collecting them. */
  async progressEvents(): Promise<{ events: ProgressEvent[]; client: LdmClient }> {
    const client = await this.client();
    const events: ProgressEvent[] = [];
    client.onEvent((ev) => {
      const cmd = ev.commands[0];
      if (cmd?.action !== 'migrate-domain') return;
      for (const d of cmd.data)
        for (const c of d.envelope?.contents ?? []) {
          const info = itemsOf(c, 'ldom_info')[0];
          if (!info?.props.has('progress')) continue;
          events.push({ domain: c.id, progress: Number.parseInt(info.props.get('progress')!, 10), status: info.props.get('status') ?? '', source: info.props.get('source') ?? '' });
        }
    });
    const r = await client.request(request('reg-progress-events'));
    if (!ok(r)) throw new Error(`${this.name} refused reg-progress-events: ${messages(r).join('; ')}`);
    return { events, client };
  }
}

export const contentOf = (doc: LdmDocument, id: string): Content | undefined =>
  doc.commands[0]?.data.flatMap((d) => d.envelope?.contents ?? []).find((c) => c.id === id);
export const itemsOf = (c: Content | undefined, type: string): Item[] => (c?.sections ?? []).flatMap((s) => s.items).filter((i) => i.type === type);

/** The machine file: the built-in machine, this agent's name and host ID, then the test's keys. */
function machineJson(name: string, hostid: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const cpuOver = (over['cpu'] ?? {}) as Record<string, unknown>;
  return { ...DEFAULT_MACHINE_FILE, hostname: name, hostid, ...over, cpu: { ...DEFAULT_MACHINE_FILE.cpu, ...cpuOver } };
}

let agentsMade = 0;

/**
 * Write an agent's directory (machine file, config, certificates, users) without
 * starting it. Every agent gets a host ID of its own, so automatic identities
 * (MAC addresses, host IDs of domains) differ between agents.
 */
export async function prepareAgent(t: Teardown, name: string, opts: AgentOptions = {}): Promise<AgentProc> {
  const dir = mkdtempSync(join(tmpdir(), `ldm-cluster-${name}-`));
  const agent = new AgentProc(name, dir, opts);
  t.teardown(async () => {
    const stopping = agent.stop();
    const timer = setTimeout(() => void agent.kill(), 5000);
    await stopping;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  });
  // 0x84 and 24 bits from this process and a counter: distinct within a test file.
  const low = ((process.pid & 0x3ffff) * 64 + (++agentsMade % 64)) & 0xffffff;
  agent.hostid = `0x84${low.toString(16).padStart(6, '0')}`;
  agent.writeMachine(opts.machine);
  if (opts.config) writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.config));
  // The names the daemon itself would ask for (daemon.ts): its hostname, localhost, the listen address.
  await ensureCerts(join(dir, 'certs'), { hostnames: [name, 'localhost'], ips: ['127.0.0.1'] });
  mkdirSync(agent.state, { recursive: true, mode: 0o700 });
  const users = await UserStore.open(agent.state);
  await users.add(ADMIN.user, 'write', ADMIN.password);
  await users.add(VIEWER.user, 'read', VIEWER.password);
  for (const [u, role, pw] of opts.users ?? []) await users.add(u, role, pw);
  return agent;
}

/** Copy `from`'s CA into `to`'s trust directory (as `ldm-agent certs trust` would). */
export function trust(to: AgentProc, from: AgentProc): void {
  copyFileSync(from.certs.ca, join(to.certs.trustDir, `${from.name}-ca.pem`));
}

/** One agent, prepared and started. */
export async function startAgentProc(t: Teardown, name: string, opts: AgentOptions = {}): Promise<AgentProc> {
  const agent = await prepareAgent(t, name, opts);
  await agent.start();
  return agent;
}

/**
 * Two agents, `alpha` (a) and `beta` (b), started at once: each trusts the other's CA
 * (unless `trust: false`) and has a write user named after the other's hostname, for
 * certificate mode (-c: the source logs in with its server certificate, CN = hostname).
 */
export async function startPair(t: Teardown, opts: PairOptions = {}): Promise<{ a: AgentProc; b: AgentProc }> {
  const peerUser = (peer: string): [string, Role, string] => [peer, 'write', `${peer}-unused-password`];
  const [a, b] = await Promise.all([
    prepareAgent(t, 'alpha', { ...opts.a, users: [peerUser('beta'), ...(opts.a?.users ?? [])] }),
    prepareAgent(t, 'beta', { ...opts.b, users: [peerUser('alpha'), ...(opts.b?.users ?? [])] }),
  ]);
  if (opts.trust !== false) {
    trust(a, b);
    trust(b, a);
  }
  await Promise.all([a.start(), b.start()]);
  return { a, b };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The migrate-domain document (protocol.md section 7). */
export function migrateXml(domain: string, target: string, opts: Omit<MigrateOptions, 'client' | 'port'> = {}): string {
  const certMode = opts.options?.includes('-c') ?? false;
  const props: Record<string, string> = { target };
  if (!certMode) {
    props['username'] = b64(opts.user ?? ADMIN.user);
    props['password'] = b64(opts.password ?? (opts.user === undefined || opts.user === ADMIN.user ? ADMIN.password : ''));
  }
  const info = Object.entries(props)
    .map(([k, v]) => `<gprop:GenericProperty key="${k}">${v}</gprop:GenericProperty>`)
    .join('');
  const body =
    `<data version="3.0"><Envelope><References/>` +
    `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${domain}"/>` +
    `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${opts.as ?? domain}"><Section xsi:type="ovf:ResourceAllocationSection_Type">` +
    `<Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>${info}</Item></Section></Content>` +
    `</Envelope></data>`;
  return request('migrate-domain', body, opts.options?.length ? opts.options.join(' ') : undefined);
}

/** Send migrate-domain of `domain` from `source` to `target` and wait for its end. */
export async function migrate(source: AgentProc, target: AgentProc, domain: string, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const client = opts.client ?? (await source.admin());
  const doc = await client.request(migrateXml(domain, opts.address ?? `127.0.0.1:${opts.port ?? target.port}`, opts));
  const obj = doc.commands[0]?.data[0]?.response;
  return { ok: obj?.status === 'success' && ok(doc), lines: obj?.messages ?? [], all: messages(doc), doc };
}

/** Poll `check` every 50 ms until it returns a truthy value (resolved with it) or `ms` pass. */
export async function waitFor<T>(check: () => T | Promise<T>, ms: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TcpProxy {
  port: number;
  /** Connections forwarded so far. */
  readonly accepted: number;
  /** Destroy every forwarded connection now (both sides). */
  cut(): void;
  /** Stop listening: new connections are refused (ECONNREFUSED); open ones go on. */
  refuse(): Promise<void>;
  /** Listen again on the same port. */
  accept(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP forwarder on 127.0.0.1 to `targetPort`, for the fault tests. */
export async function tcpProxy(t: Teardown, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let accepted = 0;
  let server: net.Server;
  const make = () =>
    net.createServer((inbound) => {
      accepted++;
      const outbound = net.connect(targetPort, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [inbound, outbound];
      pairs.add(pair);
      const drop = () => {
        inbound.destroy();
        outbound.destroy();
        pairs.delete(pair);
      };
      inbound.on('error', drop).on('close', drop);
      outbound.on('error', drop).on('close', drop);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = make();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  const port = await listen(0);
  let listening = true;
  const cut = () => {
    for (const [i, o] of pairs) {
      i.destroy();
      o.destroy();
    }
    pairs.clear();
  };
  const refuse = async () => {
    if (!listening) return;
    listening = false;
    await new Promise<void>((r) => {
      server.close(() => r());
      // close() waits for open connections; refusing new ones is all we want here.
      setImmediate(r);
    });
  };
  const proxy: TcpProxy = {
    port,
    get accepted() {
      return accepted;
    },
    cut,
    refuse,
    accept: async () => {
      if (listening) return;
      await listen(port);
      listening = true;
    },
    close: async () => {
      cut();
      await refuse();
    },
  };
  t.teardown(() => proxy.close());
  return proxy;
}
