// Discovery of managers (protocol.md section 9): real agents (one the ldm-agent
// process, one in this process) answer real UDP datagrams on the multicast group,
// the real `ldm discover` executable lists them, and an agent with discovery off,
// garbage and floods get nothing back.
import t from 'tap';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG, loadConfig, type AgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/daemon.ts';
import { announcedAddress } from '../agent/discovery.ts';
import { createLogger } from '../agent/log.ts';
import { startDaemon } from './helpers/daemon.ts';

const GROUP = '239.129.9.27';
const LDM = ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../agent/cli/ldm.ts', import.meta.url))];

/** A UDP port free right now (the agents bind it with address reuse, so they share it). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(resolve));
  return port;
}

/** A discovery request as the guides describe it, written here field by field (not with the agent's encoder). */
function request(type = 2, size = 312, magic = 92792004, version = 1): Buffer {
  const b = Buffer.alloc(size);
  if (size >= 16) {
    b.writeUInt32BE(version, 0);
    b.writeUInt32BE(magic, 4);
    b.writeUInt32BE(type, 8);
  }
  return b;
}

interface Answer {
  size: number;
  words: number[];
  version: string;
  hostname: string;
  address: string;
  port: number;
}

const cString = (b: Buffer) => b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString();

/** Send datagrams to ADDRESS:PORT from one socket and read every answer for `waitMs`. */
async function ask(address: string, port: number, packets: Buffer[], waitMs = 700): Promise<Answer[]> {
  const s = dgram.createSocket('udp4');
  const answers: Answer[] = [];
  s.on('message', (b) =>
    answers.push({
      size: b.length,
      words: [0, 4, 8, 12].map((o) => (b.length >= o + 4 ? b.readUInt32BE(o) : -1)),
      version: cString(b.subarray(16, 48)),
      hostname: cString(b.subarray(48, 304)),
      address: [...b.subarray(304, 308)].join('.'),
      port: b.length >= 312 ? b.readUInt32BE(308) : -1,
    }),
  );
  await new Promise<void>((resolve) => s.bind(0, resolve));
  s.setMulticastLoopback(true);
  for (const p of packets) await new Promise<void>((resolve) => s.send(p, port, address, () => resolve()));
  await new Promise((r) => setTimeout(r, waitMs));
  s.close();
  return answers.sort((a, b) => a.port - b.port);
}

function runLdm(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [...LDM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d));
    proc.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const PORT = await freeUdpPort();
const dir = mkdtempSync(join(tmpdir(), 'ldm-discovery-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** An agent in this process on its own state, sharing one certificate directory (key generation is the slow part). */
async function inProcess(name: string, over: Partial<AgentConfig>, logLines: string[] = []): Promise<RunningAgent> {
  const config: AgentConfig = {
    ...DEFAULT_CONFIG,
    listen: { host: '127.0.0.1', port: 0 },
    http: null,
    state: join(dir, name),
    certs: join(dir, 'certs'),
    hostname: name,
    discoveryPort: PORT,
    ...over,
  };
  const agent = await startAgent(config, () => {}, createLogger('debug', 'ldm-agent', (line) => logLines.push(line)));
  t.teardown(() => agent.stop());
  return agent;
}

// A: the real daemon process; B: on, in this process; C: discovery off, same port.
const a = await startDaemon(t, ['--discovery-port', String(PORT)]);
const b = await inProcess('node-b', {});
await inProcess('node-c', { discovery: false });
const expected = [
  { hostname: 'test-host', port: a.port },
  { hostname: 'node-b', port: b.address.port },
].sort((x, y) => x.port - y.port);

t.test('the two agents with discovery on answer a multicast request in the documented format; the one with it off does not', async (t) => {
  t.match(a.stdout(), `discovery: answering requests on UDP ${GROUP}:${PORT}`, 'the daemon says it answers');
  const answers = await ask(GROUP, PORT, [request()]);
  t.same(
    answers.map((x) => ({ hostname: x.hostname, port: x.port })),
    expected,
    'one answer from each agent that has discovery on, none from node-c',
  );
  for (const x of answers) {
    t.equal(x.size, 312, 'header 16 + version 32 + host name 256 + IPv4 4 + port 4');
    t.same(x.words, [1, 92792004, 3, 0], 'version 1, magic 92792004, type 3 (discovery response), reserved 0, big-endian');
    t.equal(x.version, '2.1', "the machine's manager version");
    t.equal(x.address, '127.0.0.1', 'the address its XML interface listens on');
  }
});

t.test('ldm discover lists both agents with their ports', async (t) => {
  // Layout "%-16s %-16s %-6s %s" (discover.ts), rows sorted by host name.
  const row = (h: string, ad: string, p: string, v: string) => `${h.padEnd(16)} ${ad.padEnd(16)} ${p.padEnd(6)} ${v}`;
  const [table, parseable, unicast, none, bad] = await Promise.all([
    runLdm(['discover', '-t', '1', '--port', String(PORT)]),
    runLdm(['discover', '-p', '-t', '1', '--port', String(PORT)]),
    runLdm(['discover', '-p', '-t', '1', '--address', '127.0.0.1', '--port', String(PORT)]),
    runLdm(['discover', '-t', '0.3', '--port', String(await freeUdpPort())]),
    runLdm(['discover', '-t', '0']),
  ]);
  t.equal(table.status, 0, table.stderr);
  t.equal(
    table.stdout,
    [
      'HOST             ADDRESS          PORT   VERSION',
      row('node-b', '127.0.0.1', String(b.address.port), '2.1'),
      row('test-host', '127.0.0.1', String(a.port), '2.1'),
      '',
    ].join('\n'),
  );
  t.equal(parseable.status, 0, parseable.stderr);
  t.equal(
    parseable.stdout,
    `MANAGER|host=node-b|address=127.0.0.1|port=${b.address.port}|version=2.1\nMANAGER|host=test-host|address=127.0.0.1|port=${a.port}|version=2.1\n`,
  );
  // Sent straight to the port (no multicast), the request reaches one of the sockets sharing it, which answers.
  t.equal(unicast.status, 0, unicast.stderr);
  t.match(unicast.stdout, new RegExp(`^MANAGER\\|host=(node-b|test-host)\\|address=127\\.0\\.0\\.1\\|port=(${a.port}|${b.address.port})\\|version=2\\.1\\n$`));
  t.equal(none.status, 1, 'nobody answering is a failure a script can test');
  t.equal(none.stdout, '');
  t.match(none.stderr, /^ldm: no Logical Domains Manager answered on 239\.129\.9\.27:\d+ within 0\.3 s/);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /-t takes the seconds to wait for answers, from 0\.1 to 60, not "0"/);
});

t.test('garbage and messages that are not requests get no answer, and the agents keep answering', async (t) => {
  const random = Buffer.alloc(312);
  for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) & 0xff;
  const garbage = [
    Buffer.alloc(0),
    request(2, 15), // shorter than the header
    random,
    request(2, 312, 92792005), // wrong magic
    request(2, 312, 92792004, 2), // unknown version
    request(0), // MAC collision detection traffic sharing the group
    request(1),
    request(3), // a response: answering it would let two managers ping-pong
    request(2, 513), // too long to be ours
    request(2, 8000),
  ];
  t.same(await ask(GROUP, PORT, garbage, 500), [], 'nothing answered on the group');
  t.same(await ask('127.0.0.1', PORT, garbage, 300), [], 'nothing answered sent to the port');
  t.equal(a.proc.exitCode, null, 'the daemon still runs');
  t.same(
    (await ask(GROUP, PORT, [request(2, 16)])).map((x) => x.port),
    expected.map((x) => x.port),
    'a bare header is a request (a client with a smaller struct), and both still answer',
  );
});

t.test('a flood of requests is answered at a bounded rate', async (t) => {
  await new Promise((r) => setTimeout(r, 1000)); // the previous tests' answers are paid back
  const answers = await ask(GROUP, PORT, Array.from({ length: 80 }, () => request()), 500);
  for (const { port } of expected) {
    const n = answers.filter((x) => x.port === port).length;
    t.ok(n >= 10 && n <= 25, `agent on ${port} answered ${n} of 80 (burst of 20 a second)`);
  }
});

t.test('a discovery port another program holds without sharing is a warning; the agent still starts', async (t) => {
  const holder = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise<void>((resolve) => holder.bind(0, resolve));
  const held = holder.address().port;
  const lines: string[] = [];
  const agent = await inProcess('node-d', { discoveryPort: held }, lines);
  t.ok(agent.address.port > 0, 'the XML interface listens');
  t.match(lines.join('\n'), `discovery: cannot listen on UDP port ${held}`);
  holder.close();
});

t.test('--discovery on|off and --discovery-port', async (t) => {
  t.same([loadConfig([]).discovery, loadConfig([]).discoveryPort], [true, 64535], 'on, on the documented port, by default');
  t.equal(loadConfig(['--discovery', 'off']).discovery, false);
  t.equal(loadConfig(['--discovery', 'on', '--discovery-port', '7000']).discoveryPort, 7000);
  for (const args of [['--discovery', 'maybe'], ['--discovery-port', '70000'], ['--discovery-port', 'x']]) {
    t.throws(() => loadConfig(args), { name: 'LdmError', code: 'LDM_ERR_USAGE' }, args.join(' '));
  }
});

t.test('the address announced is one the requester can reach', async (t) => {
  const ifaces = [
    { address: '127.0.0.1', netmask: '255.0.0.0', internal: true },
    { address: '10.1.2.3', netmask: '255.255.255.0', internal: false },
    { address: '192.168.7.9', netmask: '255.255.0.0', internal: false },
  ];
  t.equal(announcedAddress('127.0.0.1', '127.0.0.1', ifaces), '127.0.0.1');
  t.equal(announcedAddress('127.0.0.1', '10.1.2.3', ifaces), '127.0.0.1', 'a request from this host itself (its own address)');
  t.equal(announcedAddress('127.0.0.1', '10.1.2.50', ifaces), undefined, 'a loopback-only agent stays silent to other hosts');
  t.equal(announcedAddress('10.1.2.3', '10.9.9.9', ifaces), '10.1.2.3', 'a fixed address is announced as it is');
  t.equal(announcedAddress('0.0.0.0', '192.168.200.1', ifaces), '192.168.7.9', 'on every address: the interface on the requester network');
  t.equal(announcedAddress('0.0.0.0', '127.0.0.1', ifaces), '127.0.0.1');
  t.equal(announcedAddress('::1', '127.0.0.1', ifaces), undefined, 'an IPv6-only interface has no IPv4 address to announce');
});
