#!/usr/bin/env node
/**
 * `npm run demo`: the tour a newcomer runs first. Two agents on this machine (child
 * processes of bin/ldm-agent.js, each in its own temporary directory with its own
 * machine file, certificates that trust each other, and an admin user), services on
 * both, a busy guest on the first, a live migration of it with its progress line,
 * then `ldm list` on both sides. Everything is stopped and removed at the end, on
 * Ctrl-C too.
 *
 * Each command is printed as an operator would type it (`$ ldm ...`) and run with
 * this terminal as its output, so the migration's live line shows as it does by hand.
 *
 *   node scripts/demo.mjs [--keep]     --keep: leave the agents' directories for a look
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBins, ROOT } from './build.mjs';

const keep = process.argv.includes('--keep');
const AGENT_BIN = join(ROOT, 'bin/ldm-agent.js');
const LDM_BIN = join(ROOT, 'bin/ldm.js');
const PASSWORD = 'demo-password';
const started = Date.now();

const bold = (text) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const say = (text) => process.stdout.write(`\n${bold(`# ${text}`)}\n`);

/** A TCP port free on loopback right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Run a program to its end; its output goes to this terminal, or is returned when `quiet`. */
function run(file, args, { env = {}, quiet = false, show } = {}) {
  if (show) process.stdout.write(`${bold('$')} ${show}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { env: { ...process.env, ...env }, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
    let out = '';
    if (quiet) {
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
    }
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${show ?? [file, ...args].join(' ')} exited with ${code}\n${out}`))));
  });
}

class Agent {
  constructor(root, name, hostid, port) {
    this.name = name;
    this.port = port;
    this.dir = join(root, name);
    this.state = join(this.dir, 'var');
    this.certs = join(this.dir, 'certs');
    this.ca = join(this.certs, 'ca.pem');
    this.log = '';
    mkdirSync(this.dir, { mode: 0o700 });
    this.machine = join(this.dir, 'machine.json');
    // The built-in machine, with a name and host ID of its own (distinct MAC addresses and host IDs per agent).
    writeFileSync(this.machine, JSON.stringify({ hostname: name, hostid }, null, 2));
    this.config = join(this.dir, 'config.json');
    // Bandwidth capped so the migration lasts a few seconds and its progress can be watched.
    writeFileSync(this.config, JSON.stringify({ migration: { maxBandwidth: 96 * 1024 * 1024 } }, null, 2));
  }

  /** `ldm-agent` admin words on this agent's directories. */
  admin(...args) {
    return run(AGENT_BIN, [...args, '--state', this.state, '--certs', this.certs], { quiet: true });
  }

  start() {
    const args = ['--listen', `127.0.0.1:${this.port}`, '--http', 'off', '--state', this.state, '--certs', this.certs, '--machine', this.machine, '--config', this.config];
    this.proc = spawn(process.execPath, [AGENT_BIN, ...args], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => (this.log += d));
    this.proc.stderr.on('data', (d) => (this.log += d));
    this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start:\n${this.log}`)), 30_000);
      this.proc.once('exit', (code) => reject(new Error(`${this.name} exited (${code}):\n${this.log}`)));
      // `try: ...` is the last line of the agent's start-up banner.
      const check = () => {
        if (/^try: /m.test(this.log)) {
          clearTimeout(timer);
          resolve();
        }
      };
      this.proc.stdout.on('data', check);
    });
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** `ldm` on this agent's local socket, shown as the operator on that host types it. */
  ldm(...args) {
    return run(LDM_BIN, args, { env: { LDM_AGENT_STATE: this.state }, show: `ldm ${args.join(' ')}${' '.repeat(4)}# on ${this.name}` });
  }
}

const root = mkdtempSync(join(tmpdir(), 'ldm-demo-'));
const agents = [];
let cleaned = false;
async function cleanUp() {
  if (cleaned) return;
  cleaned = true;
  await Promise.all(agents.map((a) => a.stop()));
  if (keep) process.stdout.write(`\nleft in ${root}\n`);
  else rmSync(root, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stdout.write(`\n${signal}: stopping the agents\n`);
    void cleanUp().then(() => process.exit(130));
  });
}

try {
  await buildBins(); // the bins run dist/ bundles: make them match the sources of this checkout
  const [portA, portB] = [await freePort(), await freePort()];
  const a = new Agent(root, 'demo-a', '0x84f80001', portA);
  const b = new Agent(root, 'demo-b', '0x84f80002', portB);
  agents.push(a, b);

  say('Two agents on this machine, each with its own certificates and an admin user');
  const passwordFile = join(root, 'admin.password');
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  chmodSync(passwordFile, 0o600);
  for (const x of agents) {
    await x.admin('certs', 'init');
    await x.admin('user', 'add', 'admin', '--role', 'write', '--password-file', passwordFile);
  }
  // Cross-trust: each agent accepts the other's CA, so the migration's TLS is verified both ways.
  await a.admin('certs', 'trust', b.ca);
  await b.admin('certs', 'trust', a.ca);
  await Promise.all(agents.map((x) => x.start()));
  for (const x of agents) process.stdout.write(`${x.name}: XML interface on 127.0.0.1:${x.port}, state in ${x.state}\n`);

  say('Both answer discovery (UDP multicast 239.129.9.27:64535)');
  await run(LDM_BIN, ['discover', '-t', '1'], { show: 'ldm discover -t 1' }).catch(() => process.stdout.write('(no answer: multicast may be blocked here; the demo goes on)\n'));

  say('Services on both: a virtual disk server with a volume, a virtual switch, a console concentrator');
  for (const x of agents) {
    await x.ldm('add-vds', 'primary-vds0', 'primary');
    await x.ldm('add-vdsdev', '/dev/zvol/dsk/ldoms/vol1', 'vol1@primary-vds0');
    await x.ldm('add-vsw', 'net-dev=net0', 'primary-vsw0', 'primary');
    await x.ldm('add-vcc', 'port-range=5000-5100', 'primary-vcc0', 'primary');
  }
  await a.ldm('list-services');

  say('A busy guest on demo-a: 256M of its memory in use, rewritten at 8 MB/s');
  await a.ldm('add-domain', 'ldg1');
  await a.ldm('add-vcpu', '8', 'ldg1');
  await a.ldm('add-memory', '2G', 'ldg1');
  await a.ldm('add-vdisk', 'vdisk0', 'vol1@primary-vds0', 'ldg1');
  await a.ldm('add-vnet', 'vnet0', 'primary-vsw0', 'ldg1');
  await a.ldm('add-variable', 'sim-working-set=256M', 'sim-dirty-rate=8388608', 'sim-fill=text', 'ldg1');
  await a.ldm('bind-domain', 'ldg1');
  await a.ldm('start-domain', 'ldg1');
  await a.ldm('list');

  say('Live migration of ldg1 from demo-a to demo-b, driven over TLS with a password file');
  const remote = ['-H', `127.0.0.1:${a.port}`, '--ca', a.ca, '-u', 'admin', '--password-file', passwordFile];
  const migrate = [...remote, 'migrate-domain', '-p', passwordFile, 'ldg1', `admin@127.0.0.1:${b.port}`];
  await run(LDM_BIN, migrate, { show: `ldm ${migrate.join(' ')}` });

  say('After: ldg1 runs on demo-b, demo-a has only its primary');
  await a.ldm('list');
  await b.ldm('list');
  await b.ldm('list', '-o', 'status', 'ldg1');

  say(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s; stopping the agents`);
} catch (err) {
  process.stderr.write(`\ndemo failed: ${err.message}\n`);
  for (const x of agents) if (x.log) process.stderr.write(`\n--- ${x.name} output ---\n${x.log}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
