// The `ldm` subcommands that change things (agent/cli/ldm/change.ts), run as the real
// executable against a real agent on its local socket. What each did is checked through
// the agent (an LdmClient listing), never through ldm's own output.
//
// The executable is a bundle built here from the sources as they are now, into a
// temporary directory (as test/bins.test.ts builds one): a start through tsx costs 3-4
// times as much. The lifecycle, the exit statuses and a few of each kind of case run it;
// the other cases call runLdm of agent/cli/ldm/main.ts in this process (the function
// the executable runs, on the same local socket), so the file stays well under a minute.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { runLdm as runInProcess } from '../agent/cli/ldm/main.ts';
import { objectMessages, refusalMessages } from '../agent/messages.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import type { Content, Item, LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { startTestAgent } from './helpers/agent.ts';
import { data, request } from './helpers/requests.ts';

const bundle = mkdtempSync(join(tmpdir(), 'ldm-cli-change-'));
t.teardown(() => rmSync(bundle, { recursive: true, force: true }));
const build = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url)), bundle], { encoding: 'utf8', timeout: 60_000 });
if (build.status !== 0) throw new Error(`scripts/build.mjs failed: ${build.stdout}${build.stderr}`);

interface LdmRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `ldm ARGS` to its end (killed after 30 s), stdin closed. */
function runLdm(args: string[], env: Record<string, string>): Promise<LdmRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [join(bundle, 'ldm.js'), ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('error', reject);
    proc.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
    proc.stdin.end();
  });
}

const agent = await startTestAgent(t, { users: [['reader', 'read', 'reader-secret']] });
const env = { LDM_AGENT_STATE: join(agent.dir, 'var') };
const client = await LdmClient.connect({ path: join(agent.dir, 'var', 'ldmd.sock'), auth: { kind: 'local' } });
t.teardown(() => client.close());

/** The executable. */
const exe = (...args: string[]): Promise<LdmRun> => runLdm(args, env);

/** The same command line in this process. */
async function ldm(...args: string[]): Promise<LdmRun> {
  let stdout = '';
  let stderr = '';
  const stdin = new PassThrough();
  stdin.end();
  const status = await runInProcess(args, { stdin, stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } }, { ...process.env, ...env });
  return { status, signal: null, stdout, stderr };
}

/** A run that must succeed as ldm does: status 0, nothing printed. */
async function expectQuiet(t: Test, run: Promise<LdmRun>, args: string[]): Promise<void> {
  const r = await run;
  t.same({ status: r.status, stdout: r.stdout, stderr: r.stderr }, { status: 0, stdout: '', stderr: '' }, `ldm ${args.join(' ')}`);
}
const quiet = (t: Test, ...args: string[]) => expectQuiet(t, ldm(...args), args);
const quietExe = (t: Test, ...args: string[]) => expectQuiet(t, exe(...args), args);

async function listing(action: string, domain?: string): Promise<LdmDocument> {
  return client.request(request(action, domain ? data(domain) : undefined));
}
const contentsOf = (doc: LdmDocument): Content[] => doc.commands[0]!.data[0]?.envelope?.contents ?? [];
const itemsOf = (c: Content | undefined, type: string): Item[] => (c?.sections ?? []).flatMap((s) => s.items).filter((i) => i.type === type);
const sectionItems = (doc: LdmDocument, type: string): Item[] =>
  (doc.commands[0]!.data[0]?.envelope?.sections ?? []).flatMap((s) => s.items).filter((i) => i.type === type);
const props = (i: Item | undefined) => Object.fromEntries(i?.props ?? []);

async function state(domain: string): Promise<string | undefined> {
  const c = contentsOf(await listing('list-domain')).find((x) => x.id === domain);
  return c ? itemsOf(c, 'ldom_info')[0]!.props.get('state') : undefined;
}
async function constraints(domain: string): Promise<Content> {
  return contentsOf(await listing('list-constraints', domain))[0]!;
}
async function services(): Promise<Content | undefined> {
  return contentsOf(await listing('list-services')).find((c) => c.id === 'primary');
}

t.test('a domain built from nothing with ldm alone, then taken down again', async (t) => {
  // Services on the primary (the 3.x guide's walkthrough).
  await quietExe(t, 'add-vds', 'primary-vds0', 'primary');
  await quietExe(t, 'add-vdsdev', '-o', 'ro', 'mpgroup=mp1', '/dev/zvol/dsk/ldoms/ldg1', 'vol1@primary-vds0');
  await quietExe(t, 'add-vsw', 'net-dev=net0', 'mtu=9000', 'primary-vsw0', 'primary');
  await quietExe(t, 'add-vcc', 'port-range=5000-5100', 'primary-vcc0', 'primary');
  let svc = await services();
  t.same(props(itemsOf(svc, 'vds')[0]), { service_name: 'primary-vds0' });
  t.same(props(itemsOf(svc, 'vds_volume')[0]), { vol_name: 'vol1', service_name: 'primary-vds0', block_dev: '/dev/zvol/dsk/ldoms/ldg1', vol_opts: 'ro', mpgroup: 'mp1' });
  t.match(props(itemsOf(svc, 'vsw')[0]), { service_name: 'primary-vsw0', dev_path: 'net0', mtu: '9000' });
  t.same(props(itemsOf(svc, 'vcc')[0]), { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' });

  // The guest and its resources.
  await quietExe(t, 'add-domain', 'failure-policy=reset', 'ldg1');
  await quietExe(t, 'add-vcpu', '8', 'ldg1');
  await quietExe(t, 'add-memory', '2G', 'ldg1');
  await quiet(t, 'add-mau', '1', 'ldg1');
  await quietExe(t, 'add-vdisk', 'timeout=30', 'vdisk1', 'vol1@primary-vds0', 'ldg1');
  await quietExe(t, 'add-vnet', 'pvid=3', 'mac-addr=00:14:4f:fa:00:01', 'vnet1', 'primary-vsw0', 'ldg1');
  await quietExe(t, 'add-variable', 'auto-boot?=false', 'boot-device=vdisk1', 'ldg1');
  await quiet(t, 'set-variable', 'auto-boot?=true', 'ldg1');
  await quiet(t, 'set-vcons', 'port=5009', 'ldg1');
  await quiet(t, 'set-domain', 'shutdown-group=7', 'ldg1');
  const c = await constraints('ldg1');
  t.match(props(itemsOf(c, 'ldom_info')[0]), { 'failure-policy': 'reset', 'shutdown-group': '7' });
  t.equal(itemsOf(c, 'cpu')[0]!.rasd.get('AllocationUnits'), '8');
  t.equal(itemsOf(c, 'memory')[0]!.rasd.get('AllocationUnits'), '2G');
  t.equal(itemsOf(c, 'mau')[0]!.rasd.get('AllocationUnits'), '1');
  t.same(props(itemsOf(c, 'disk')[0]), { vdisk_name: 'vdisk1', vol_name: 'vol1', service_name: 'primary-vds0', timeout: '30' });
  t.same(props(itemsOf(c, 'network')[0]), { vnet_name: 'vnet1', service_name: 'primary-vsw0', pvid: '3' });
  t.equal(itemsOf(c, 'network')[0]!.rasd.get('Address'), '00:14:4f:fa:00:01');
  t.same(itemsOf(c, 'var').map((i) => [i.props.get('name'), i.props.get('value')]), [['auto-boot?', 'true'], ['boot-device', 'vdisk1']]);
  t.equal(itemsOf(c, 'console')[0]!.props.get('port'), '5009');

  // Its life: bind, start, stop, unbind, remove.
  await quietExe(t, 'bind-domain', 'ldg1');
  t.equal(await state('ldg1'), 'bound');
  await quietExe(t, 'start-domain', 'ldg1');
  t.equal(await state('ldg1'), 'active');
  await quietExe(t, 'stop-domain', 'ldg1');
  t.equal(await state('ldg1'), 'bound');
  await quietExe(t, 'unbind-domain', 'ldg1');
  t.equal(await state('ldg1'), 'inactive');
  await quiet(t, 'remove-variable', 'boot-device', 'ldg1');
  await quiet(t, 'remove-vdisk', 'vdisk1', 'ldg1');
  await quiet(t, 'remove-vnet', 'vnet1', 'ldg1');
  await quiet(t, 'remove-memory', '1G', 'ldg1');
  await quiet(t, 'remove-vcpu', '6', 'ldg1');
  const after = await constraints('ldg1');
  t.same(itemsOf(after, 'var').map((i) => i.props.get('name')), ['auto-boot?']);
  t.same([itemsOf(after, 'disk').length, itemsOf(after, 'network').length], [0, 0]);
  t.equal(itemsOf(after, 'memory')[0]!.rasd.get('AllocationUnits'), '1G');
  t.equal(itemsOf(after, 'cpu')[0]!.rasd.get('AllocationUnits'), '2');
  await quietExe(t, 'remove-domain', 'ldg1');
  t.equal(await state('ldg1'), undefined);

  // And the services.
  await quiet(t, 'remove-vdsdev', 'vol1@primary-vds0');
  await quiet(t, 'remove-vds', 'primary-vds0');
  await quiet(t, 'set-vsw', 'mtu=1500', 'primary-vsw0');
  t.equal(itemsOf(await services(), 'vsw')[0]!.props.get('mtu'), '1500');
  await quiet(t, 'remove-vsw', 'primary-vsw0');
  await quiet(t, 'set-vcc', 'port-range=6000-6010', 'primary-vcc0');
  t.same(props(itemsOf(await services(), 'vcc')[0]), { service_name: 'primary-vcc0', min_port: '6000', max_port: '6010' });
  await quiet(t, 'remove-vcc', 'primary-vcc0');
  svc = await services();
  t.equal(svc, undefined, 'no service is left on the primary');
});

t.test("Oracle's short forms and command aliases", async (t) => {
  await quiet(t, 'add-vconscon', 'port-range=5000-5100', 'primary-vcc0', 'primary');
  t.equal(itemsOf(await services(), 'vcc').length, 1);
  await quiet(t, 'create', 'ldg2', 'ldg3');
  await quiet(t, 'set-core', '1', 'ldg2');
  await quiet(t, 'add-vcpu', '-c', '1', 'ldg3');
  await quiet(t, 'add-crypto', '1', 'ldg2');
  await quiet(t, 'set-mem', '1G', 'ldg2');
  await quiet(t, 'add-mem', '512M', 'ldg3');
  await quiet(t, 'add-var', 'x=1', 'y=', 'ldg2');
  await quiet(t, 'rm-var', 'x', 'ldg2');
  await quiet(t, 'modify', 'hostid=0x84f90001', 'ldg2');
  const c2 = await constraints('ldg2');
  t.same(props(itemsOf(c2, 'cpu')[0]), { wcore: '1' }, 'set-core counts whole cores');
  t.equal(itemsOf(c2, 'mau')[0]!.rasd.get('AllocationUnits'), '1');
  t.equal(itemsOf(c2, 'memory')[0]!.rasd.get('AllocationUnits'), '1G');
  t.same(itemsOf(c2, 'var').map((i) => [i.props.get('name'), i.props.get('value')]), [['y', '']]);
  t.equal(itemsOf(c2, 'ldom_info')[0]!.props.get('hostid'), '0x84f90001');
  t.same(props(itemsOf(await constraints('ldg3'), 'cpu')[0]), { wcore: '1' }, 'add-vcpu -c counts whole cores');

  await quietExe(t, 'bind', 'ldg2');
  await quiet(t, 'bind', 'ldg3');
  await quietExe(t, 'start', '-a');
  t.same([await state('ldg2'), await state('ldg3')], ['active', 'active'], 'start -a starts every bound domain');
  await quietExe(t, 'stop', '-a');
  t.same([await state('primary'), await state('ldg2'), await state('ldg3')], ['active', 'bound', 'bound'], 'stop -a stops all but the control domain');
  await quiet(t, 'stop', '-a'); // nothing left to stop: done, quietly
  await quiet(t, 'start', 'ldg2');
  await quiet(t, 'stop', '-f', 'ldg2');
  t.equal(await state('ldg2'), 'bound');
  await quiet(t, 'unbind', 'ldg2');
  await quiet(t, 'unbind', 'ldg3');

  await quiet(t, 'add-config', 'cfg1');
  await quiet(t, 'set-spconfig', 'cfg1');
  const configs = sectionItems(await listing('list-spconfig'), 'spconfig');
  t.same(props(configs.find((i) => i.props.get('spconfig_name') === 'cfg1')), { spconfig_name: 'cfg1', spconfig_status: 'current' });
  await quiet(t, 'rm-config', 'cfg1');
  t.notOk(sectionItems(await listing('list-spconfig'), 'spconfig').some((i) => i.props.get('spconfig_name') === 'cfg1'));

  await quiet(t, 'rm-dom', '-a');
  t.same(contentsOf(await listing('list-domain')).map((x) => x.id), ['primary'], 'rm-dom -a leaves the primary only');
});

t.test("the agent's warnings go to stderr, and the command still succeeds", async (t) => {
  await quiet(t, 'add-dom', 'ldg4');
  const rounded = await exe('add-memory', '1000M', 'ldg4');
  t.same(rounded, { status: 0, signal: null, stdout: '', stderr: objectMessages.memoryRounded('1000M', '1G') + '\n' });
  await quiet(t, 'add-vds', 'primary-vds0', 'primary');
  await quiet(t, 'add-vdsdev', '/dev/zvol/dsk/ldoms/ldg4', 'vol4@primary-vds0');
  // id= is ldm(1M)'s, not modelled by the agent: it says so instead of the command refusing a valid line.
  const id = await ldm('add-vdisk', 'id=3', 'vdisk1', 'vol4@primary-vds0', 'ldg4');
  t.same(id, { status: 0, signal: null, stdout: '', stderr: objectMessages.ignoredKeys('disk', ['id'], 'add-vdisk') + '\n' });
  t.equal(itemsOf(await constraints('ldg4'), 'disk').length, 1);
});

t.test("failures: the agent's messages on stderr, status 1", async (t) => {
  const expectFailure = async (run: Promise<LdmRun>, expected: string[], args: string[]) => {
    const r = await run;
    t.same({ status: r.status, stdout: r.stdout, stderr: r.stderr }, { status: 1, stdout: '', stderr: expected.map((l) => l + '\n').join('') }, `ldm ${args.join(' ')}`);
  };
  const failing = (expected: string[], ...args: string[]) => expectFailure(ldm(...args), expected, args);
  const failingExe = (expected: string[], ...args: string[]) => expectFailure(exe(...args), expected, args);
  await failingExe([refusalMessages.bindFirst('ldg4')], 'start', 'ldg4');
  await failing([refusalMessages.noCpus('ldg4')], 'bind', 'ldg4');
  await failing([refusalMessages.noSuchDomain('nosuch')], 'add-vcpu', '4', 'nosuch');
  await failing([refusalMessages.cannotRemovePrimary()], 'remove-domain', 'primary');
  await failing([refusalMessages.volumeExists('vol4', 'primary-vds0')], 'add-vdsdev', '/dev/other', 'vol4@primary-vds0');
  await failing([refusalMessages.noSuchVolume('nope', 'primary-vds0')], 'rm-vdsdev', 'nope@primary-vds0');
  await failing([refusalMessages.serviceInUse('primary-vds0', ['ldg4'])], 'rm-vds', 'primary-vds0');

  // Several domains: each is answered on its own; one failing does not stop the other.
  await quiet(t, 'add-vcpu', '2', 'ldg4');
  await quiet(t, 'bind', 'ldg4');
  await failingExe([refusalMessages.noSuchDomain('ghost')], 'start', 'ldg4', 'ghost');
  t.equal(await state('ldg4'), 'active', 'the domain that exists was started');
  await failing([refusalMessages.mustBeInactiveToRemove('ldg4', 'active')], 'rm-dom', 'ldg4');

  // A command refused as a whole (a read user over TCP) is told once.
  const pw = join(agent.dir, 'reader.pw');
  writeFileSync(pw, 'reader-secret\n');
  chmodSync(pw, 0o600);
  const remote = ['-H', `127.0.0.1:${agent.port}`, '--ca', agent.certPaths.ca, '-u', 'reader', '--password-file', pw];
  const refused = await exe(...remote, 'stop', 'ldg4');
  t.equal(refused.status, 1);
  t.equal(refused.stdout, '');
  t.match(refused.stderr, /^[^\n]*\breader\b[^\n]*stop-domain[^\n]*\n$/, 'one line naming the user and the action');
  t.equal(await state('ldg4'), 'active', 'nothing was stopped');
  await quiet(t, 'stop', 'ldg4');
});

t.test('bad usage: the subcommand, what is wrong and its usage line on stderr, status 2, nothing sent', async (t) => {
  const before = encodeDocument(await listing('list-constraints'));
  // [arguments, what is wrong, the usage line (its first word names the subcommand), run by the executable]
  const cases: [string[], string, string, boolean?][] = [
    [['add-vcpu'], 'missing operands', 'add-vcpu [-c] NUMBER LDOM', true],
    [['add-vcpu', 'eight', 'ldg4'], 'NUMBER must be a whole number, not "eight"', 'add-vcpu [-c] NUMBER LDOM'],
    [['add-vcpu', '1', 'ldg4', 'ldg5'], 'too many operands: ldg5', 'add-vcpu [-c] NUMBER LDOM'],
    [['add-memory', '4X', 'ldg4'], '"4X" is not a size: give a number with K, M or G (for example 4G, 512M)', 'add-memory [--auto-adj] SIZE[K|M|G] LDOM'],
    [['add-vcc', 'primary-vcc1', 'primary'], 'give at least one of port-range=', 'add-vcc port-range=MIN-MAX VCC-NAME LDOM'],
    [['add-vcc', 'port-range=5000', 'primary-vcc1', 'primary'], 'port-range takes MIN-MAX (for example 5000-5100), not "5000"', 'add-vcc port-range=MIN-MAX VCC-NAME LDOM'],
    [['add-vdsdev', '/dev/x', 'vol9'], '"vol9" is not VOLUME@SERVICE', 'add-vdsdev [-f] [-q] [-o OPTIONS] [options=ro,slice,excl] [mpgroup=GROUP] BACKEND VOLUME@SERVICE'],
    [['stop', '-r', 'ldg4'], 'unknown option -r', 'stop-domain [-f | -q] (-a | LDOM...)', true],
    [['stop-domain', '-a', 'ldg4'], '-a acts on every domain: give it without domain names', 'stop-domain [-f | -q] (-a | LDOM...)'],
    [['start'], 'missing operands', 'start-domain (-a | LDOM...)'],
    [['bind', 'ldg4', 'ldg5'], 'too many operands: ldg5', 'bind-domain LDOM'],
    [['rm-var', 'a=1', 'ldg4'], 'remove-variable takes variable names, not "a=1"', 'remove-variable NAME... LDOM'],
    [['add-var', 'novalue', 'ldg4'], '"novalue" is not NAME=VALUE (an empty value is written NAME=)', 'add-variable NAME=[VALUE]... LDOM'],
    [['add-dom', '-i', 'x.xml', 'ldg9'], '-i FILE names the domains itself: give it without properties or domain names', 'add-domain (-i FILE | [PROPERTY=VALUE...] LDOM...)'],
    [['set-domain', 'ldg4'], 'give at least one of mac-addr=, hostid=, failure-policy=, extended-mapin-space=, master=, max-cores=, perf-counters=, boot-policy=, shutdown-group=, rc-add-policy=, cpu-arch=', 'set-domain PROPERTY=VALUE... LDOM'],
    [['add-vsw', 'speed=10', 'sw9', 'primary'], 'unknown property speed (this subcommand takes mac-addr, net-dev, mode, pvid, vid, mtu, linkprop, inter-vnet-link, default-vlan-id, id)', 'add-vsw [mac-addr=MAC] [net-dev=DEVICE] [mode=sc] [pvid=ID] [vid=ID,...] [mtu=SIZE] [linkprop=phys-state] [inter-vnet-link=on|off] VSWITCH-NAME LDOM'],
    [['unbind', 'x=1'], 'this subcommand takes no properties, not x=', 'unbind-domain LDOM'],
    [['set-vcons', 'port=', 'ldg4'], 'port must be a whole number, not ""', 'set-vcons [port=PORT] [group=GROUP] [service=VCC-NAME] [log=on|off] LDOM'],
    [['add-dom', 'hostid=1', 'hostid=2', 'ldg9'], 'property hostid is given twice', 'add-domain (-i FILE | [PROPERTY=VALUE...] LDOM...)'],
  ];
  for (const [args, detail, usage, viaExe] of cases) {
    const r = await (viaExe ? exe(...args) : ldm(...args));
    const name = usage.split(' ')[0]!;
    t.same({ status: r.status, stdout: r.stdout, stderr: r.stderr }, { status: 2, stdout: '', stderr: `ldm ${name}: ${detail}\nusage: ldm ${usage}\n` }, `ldm ${args.join(' ')}`);
  }
  t.equal(encodeDocument(await listing('list-constraints')), before, 'no domain changed');
  const help = await exe('add-vcpu', '-h');
  t.same({ status: help.status, stdout: help.stdout, stderr: help.stderr }, { status: 0, stdout: 'usage: ldm add-vcpu [-c] NUMBER LDOM\n', stderr: '' });
});

t.test('add-domain -i FILE takes back list-constraints -x output', async (t) => {
  // Oracle's shape: <data> straight under the root, as `ldm list-constraints -x ldg5 > ldg5.xml` writes it.
  const oracle = join(agent.dir, 'ldg5.xml');
  writeFileSync(
    oracle,
    `<?xml version="1.0"?>
<LDM_interface version="1.3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ovf="./schemas/envelope"
    xmlns:rasd="./schemas/CIM_ResourceAllocationSettingData" xmlns:gprop="./schemas/GenericProperty">
  <data version="3.0">
    <Envelope>
      <References/>
      <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg5">
        <Section xsi:type="ovf:ResourceAllocationSection_Type">
          <Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>
            <gprop:GenericProperty key="hostid">0x84f90005</gprop:GenericProperty></Item>
          <Item><rasd:OtherResourceType>cpu</rasd:OtherResourceType><rasd:AllocationUnits>4</rasd:AllocationUnits></Item>
          <Item><rasd:OtherResourceType>memory</rasd:OtherResourceType><rasd:AllocationUnits>2G</rasd:AllocationUnits></Item>
          <Item><rasd:OtherResourceType>var</rasd:OtherResourceType>
            <gprop:GenericProperty key="name">auto-boot?</gprop:GenericProperty>
            <gprop:GenericProperty key="value">false</gprop:GenericProperty></Item>
        </Section>
      </Content>
    </Envelope>
  </data>
</LDM_interface>
`,
  );
  await quietExe(t, 'add-domain', '-i', oracle);
  const c5 = await constraints('ldg5');
  t.equal(itemsOf(c5, 'ldom_info')[0]!.props.get('hostid'), '0x84f90005');
  t.equal(itemsOf(c5, 'cpu')[0]!.rasd.get('AllocationUnits'), '4');
  t.equal(itemsOf(c5, 'memory')[0]!.rasd.get('AllocationUnits'), '2G');
  t.same(itemsOf(c5, 'var').map((i) => [i.props.get('name'), i.props.get('value')]), [['auto-boot?', 'false']]);

  // A whole list-constraints response document (in a <cmd>) recreates the domain as it was, identity included.
  const saved = await listing('list-constraints', 'ldg5');
  const file = join(agent.dir, 'ldg5-response.xml');
  writeFileSync(file, encodeDocument(saved, { declaration: true }));
  await quiet(t, 'rm-dom', 'ldg5');
  await quiet(t, 'create', '-i', file);
  t.same(encodeDocument(await listing('list-constraints', 'ldg5')), encodeDocument(saved));

  const again = await ldm('add-dom', '-i', file);
  t.same({ status: again.status, stderr: again.stderr }, { status: 1, stderr: refusalMessages.domainExists('ldg5') + '\n' });
  const missing = await ldm('add-dom', '-i', join(agent.dir, 'none.xml'));
  t.equal(missing.status, 1);
  t.match(missing.stderr, /^ldm: cannot read .*none\.xml: ENOENT\n$/);
  const notXml = join(agent.dir, 'bad.xml');
  writeFileSync(notXml, '<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>');
  const empty = await ldm('add-dom', '-i', notXml);
  t.same({ status: empty.status, stderr: empty.stderr }, { status: 1, stderr: `ldm: ${notXml} is not domain constraints as list-constraints -x writes them: it names no domain\n` });
});
