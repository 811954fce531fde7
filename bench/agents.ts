/**
 * Two (or more) real agents as child processes on loopback, for the migration
 * benchmark: each in a temporary directory with its own machine file (the built-in
 * machine, a distinct hostname and host ID), certificates, an `admin` write user and
 * optional `--config`; each trusts the others' CAs. The few steps test/helpers/cluster.ts
 * also takes, written again here so that benchmarks do not depend on test helpers.
 *
 * Agents run from the TypeScript sources through tsx (never the bundles in dist/, which
 * may be older); their start-up cost is outside every timed figure.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { certPaths, ensureCerts, type CertPaths } from '../agent/auth/certs.ts';
import { UserStore } from '../agent/auth/users.ts';
import { DEFAULT_MACHINE_FILE } from '../agent/model/machine.ts';
import type { Content, LdmDocument } from '../agent/xml/document.ts';
import { escapeAttr, escapeXml, NAMESPACES } from '../agent/xml/encode.ts';
import { LdmClient } from '../agent/xmpp/client.ts';

const ADMIN = { user: 'admin', password: 'bench-admin-secret' };
const AGENT_CLI = fileURLToPath(new URL('../agent/cli/ldm-agent.ts', import.meta.url));
const NS = Object.entries(NAMESPACES)
  .map(([p, uri]) => `xmlns:${p}="${uri}"`)
  .join(' ');

/** One ldom_info's properties by key. */
export type Props = Record<string, string>;

// ── request documents ───────────────────────────────────────────────────

export interface ItemSpec {
  type: string;
  props?: Record<string, string>;
  rasd?: Record<string, string>;
}

function itemXml({ type, props = {}, rasd = {} }: ItemSpec): string {
  return (
    `<Item><rasd:OtherResourceType>${escapeXml(type)}</rasd:OtherResourceType>` +
    Object.entries(rasd).map(([k, v]) => `<rasd:${k}>${escapeXml(v)}</rasd:${k}>`).join('') +
    Object.entries(props).map(([k, v]) => `<gprop:GenericProperty key="${escapeAttr(k)}">${escapeXml(v)}</gprop:GenericProperty>`).join('') +
    `</Item>`
  );
}

/** A <data> naming `domain` (or none), with items. */
export function data(domain: string | null, ...items: ItemSpec[]): string {
  const section = items.length ? `<Section xsi:type="ovf:VirtualHardwareSection_Type">${items.map(itemXml).join('')}</Section>` : '';
  const body = domain === null ? section : `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${escapeAttr(domain)}">${section}</Content>`;
  return `<data version="3.0"><Envelope><References/>${body}</Envelope></data>`;
}

export function request(action: string, dataXml = '<data version="3.0"/>', options?: string): string {
  return `<LDM_interface version="1.3" ${NS}><cmd><action>${action}</action>${options ? `<options>${options}</options>` : ''}${dataXml}</cmd></LDM_interface>`;
}

/** migrate-domain of `domain` to `target` (host:port) with the admin login (protocol.md section 7). */
export function migrateXml(domain: string, target: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const props = { target, username: b64(ADMIN.user), password: b64(ADMIN.password) };
  const info = Object.entries(props)
    .map(([k, v]) => `<gprop:GenericProperty key="${k}">${v}</gprop:GenericProperty>`)
    .join('');
  return request(
    'migrate-domain',
    `<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${domain}"/>` +
      `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${domain}"><Section xsi:type="ovf:ResourceAllocationSection_Type">` +
      `<Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>${info}</Item></Section></Content></Envelope></data>`,
  );
}

export const succeeded = (doc: LdmDocument): boolean => doc.response?.status === 'success';

/** Every message text of a response, for errors. */
export function messagesOf(doc: LdmDocument): string[] {
  const out = [...(doc.response?.messages ?? [])];
  for (const c of doc.commands) {
    out.push(...(c.response?.messages ?? []));
    for (const d of c.data) out.push(...(d.response?.messages ?? []));
  }
  return out;
}

const contentsOf = (doc: LdmDocument): Content[] => doc.commands[0]?.data.flatMap((d) => d.envelope?.contents ?? []) ?? [];
const ldomInfo = (c: Content | undefined): Props | undefined => {
  const item = (c?.sections ?? []).flatMap((s) => s.items).find((i) => i.type === 'ldom_info');
  return item ? Object.fromEntries(item.props) : undefined;
};

// ── the agents ──────────────────────────────────────────────────────────

export interface BenchAgentOptions {
  /** `--config` file content, e.g. `{ migration: { maxBandwidth: 16e6 } }`. */
  config?: Record<string, unknown>;
  /** `--guest-memory` (resident memory of all its guests), e.g. "4G". */
  guestMemory?: string;
}

let made = 0;

export class BenchAgent {
  port = 0;
  private proc: ChildProcessWithoutNullStreams | undefined;
  private out = '';
  private session: LdmClient | undefined;
  private readonly clients = new Set<LdmClient>();
  readonly certs: CertPaths;

  private constructor(
    readonly name: string,
    readonly dir: string,
    private readonly opts: BenchAgentOptions,
  ) {
    this.certs = certPaths(join(dir, 'certs'));
  }

  /** Write the agent's directory: machine file (own host ID), config, certificates, the admin user. */
  static async prepare(name: string, opts: BenchAgentOptions = {}): Promise<BenchAgent> {
    const dir = mkdtempSync(join(tmpdir(), `ldm-bench-${name}-`));
    const agent = new BenchAgent(name, dir, opts);
    // Distinct host IDs: migration refuses a target that is the source's own machine.
    const hostid = `0x85${(((process.pid & 0xffff) << 8) | (++made & 0xff)).toString(16).padStart(6, '0').slice(-6)}`;
    writeFileSync(join(dir, 'machine.json'), JSON.stringify({ ...DEFAULT_MACHINE_FILE, hostname: name, hostid }));
    if (opts.config) writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.config));
    await ensureCerts(join(dir, 'certs'), { hostnames: [name, 'localhost'], ips: ['127.0.0.1'] });
    mkdirSync(join(dir, 'var'), { recursive: true, mode: 0o700 });
    const users = await UserStore.open(join(dir, 'var'));
    await users.add(ADMIN.user, 'write', ADMIN.password);
    return agent;
  }

  /** Trust `other`'s CA (as `ldm-agent certs trust` would). */
  trust(other: BenchAgent): void {
    copyFileSync(other.certs.ca, join(this.certs.trustDir, `${other.name}-ca.pem`));
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The agent process's id (the soak reads its /proc entries), once started. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** What the agent wrote on stdout and stderr (warnings and errors: LDM_LOG_LEVEL=warn). */
  get log(): string {
    return this.out;
  }

  async start(): Promise<void> {
    const args = [
      '--import',
      import.meta.resolve('tsx'),
      AGENT_CLI,
      ...['--listen', '127.0.0.1:0', '--http', 'off', '--state', join(this.dir, 'var'), '--certs', join(this.dir, 'certs')],
      ...['--hostname', this.name, '--machine', join(this.dir, 'machine.json')],
      ...(this.opts.config ? ['--config', join(this.dir, 'config.json')] : []),
      ...(this.opts.guestMemory ? ['--guest-memory', this.opts.guestMemory] : []),
    ];
    const proc = spawn(process.execPath, args, { cwd: this.dir, env: { ...process.env, LDM_LOG_LEVEL: 'warn' } });
    this.proc = proc;
    proc.stdout.on('data', (d: Buffer) => (this.out += d));
    proc.stderr.on('data', (d: Buffer) => (this.out += d));
    this.port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start:\n${this.out}`)), 60_000);
      const check = () => {
        const m = /XML interface listening on [^\s]+:(\d+)/.exec(this.out);
        if (m && /^try: /m.test(this.out)) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      proc.stdout.on('data', check);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code}):\n${this.out}`));
      });
    });
  }

  /** Stop the agent (SIGTERM, SIGKILL after 5 s) and remove its directory. */
  async stop(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => {});
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new logged-in session (closed by stop). */
  async client(): Promise<LdmClient> {
    const c = await LdmClient.connect({
      host: '127.0.0.1',
      port: this.port,
      auth: { kind: 'password', user: ADMIN.user, password: ADMIN.password },
      ca: readFileSync(this.certs.ca, 'utf8'),
      servername: 'localhost',
      timeoutMs: 60_000,
    });
    this.clients.add(c);
    return c;
  }

  async request(xml: string): Promise<LdmDocument> {
    this.session ??= await this.client();
    return this.session.request(xml);
  }

  async must(xml: string): Promise<LdmDocument> {
    const r = await this.request(xml);
    if (!succeeded(r)) throw new Error(`${this.name} refused: ${messagesOf(r).join('; ')}`);
    return r;
  }

  /** list-domain NAME's ldom_info, or undefined when there is no such domain. */
  async listDomain(name: string, via?: LdmClient): Promise<Props | undefined> {
    const xml = request('list-domain', data(name));
    const r = via ? await via.request(xml) : await this.request(xml);
    return succeeded(r) ? ldomInfo(contentsOf(r).find((c) => c.id === name)) : undefined;
  }

  /** Every list-migrations row of `domain` (oldest first). */
  async migrations(domain: string): Promise<Props[]> {
    const r = await this.must(request('list-migrations'));
    return contentsOf(r)
      .filter((c) => c.id === domain)
      .map(ldomInfo)
      .filter((p): p is Props => p !== undefined);
  }

  /** The latest list-migrations row of `domain` where this agent had `role`. */
  async migration(domain: string, role: 'source' | 'target' = 'source'): Promise<Props | undefined> {
    return (await this.migrations(domain)).filter((p) => p['role'] === role).at(-1);
  }

  /** A running domain: vcpus, memory, the sim-* variables, bound and started. */
  async runningDomain(name: string, memory: string, vars: Record<string, string>): Promise<void> {
    await this.must(request('add-domain', data(name)));
    await this.must(request('add-vcpu', data(name, { type: 'cpu', rasd: { AllocationUnits: '8' } })));
    await this.must(request('add-memory', data(name, { type: 'memory', rasd: { AllocationUnits: memory } })));
    for (const [k, v] of Object.entries(vars)) await this.must(request('add-variable', data(name, { type: 'var', props: { name: k, value: v } })));
    await this.must(request('bind-domain', data(name)));
    await this.must(request('start-domain', data(name)));
  }
}

/** Prepare agents with these names, each trusting the others, and start them together. */
export async function startAgents(names: [string, BenchAgentOptions][]): Promise<BenchAgent[]> {
  const agents = await Promise.all(names.map(([n, o]) => BenchAgent.prepare(n, o)));
  for (const a of agents) for (const b of agents) if (a !== b) a.trust(b);
  try {
    await Promise.all(agents.map((a) => a.start()));
    // A console concentrator: binding a domain takes a console port, on the target too.
    const vcc = { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' };
    await Promise.all(agents.map((a) => a.must(request('add-vconscon', data('primary', { type: 'vcc', props: vcc })))));
  } catch (err) {
    await Promise.all(agents.map((a) => a.stop()));
    throw err;
  }
  return agents;
}

/** Poll `check` every `everyMs` until it returns something truthy, or fail after `ms` naming `what`. */
export async function waitFor<T>(check: () => Promise<T>, ms: number, what: string, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    if (everyMs > 0) await new Promise((r) => setTimeout(r, everyMs));
  }
}
