// SR-IOV on the simulated machine (set-io, create-vf, destroy-vf, list-io) and
// what the agent answers to later releases' actions it does not model. The
// built-in machine's /SYS/MB/NET0 has two Ethernet physical functions of up
// to 7 virtual functions each, on pci_0 (I/O virtualization on); pci_1 has it off.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type AgentConfig } from '../agent/config.ts';
import { startAgent, type RunningAgent } from '../agent/daemon.ts';
import { createLogger } from '../agent/log.ts';
import { Guests } from '../agent/manager/guests.ts';
import { Ldm } from '../agent/model/ldm.ts';
import { machineFromJson } from '../agent/model/machine.ts';
import { StateStore } from '../agent/model/store.ts';
import type { LdmDocument } from '../agent/xml/document.ts';
import { LdmClient } from '../agent/xmpp/client.ts';
import { cpu, data, memory, request, type ItemSpec } from './helpers/requests.ts';
import { messages, mustSucceed, ok, refusalOf } from './helpers/session.ts';

const root = mkdtempSync(join(tmpdir(), 'ldm-io-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const certs = join(root, 'certs');
const quiet = createLogger('error', 'ldm-agent', () => {});
const config = (state: string): AgentConfig => ({ ...DEFAULT_CONFIG, listen: { host: '127.0.0.1', port: 0 }, http: null, state, certs, hostname: 'test-host' });

/** An agent on `state`, and a client on its local socket (write role, no password). */
async function agentOn(state: string): Promise<{ agent: RunningAgent; client: LdmClient; stop: () => Promise<void> }> {
  const agent = await startAgent(config(state), () => {}, quiet);
  const client = await LdmClient.connect({ path: agent.unixPath, auth: { kind: 'local' } });
  return { agent, client, stop: async () => (await client.close(), await agent.stop()) };
}

const state = join(root, 'state');
mkdirSync(state, { mode: 0o700 });
let { agent, client, stop } = await agentOn(state);
t.teardown(() => stop());

// Through `client` as it is at the call: a restart below replaces it.
const must = (text: string) => mustSucceed(client, text);
const refused = (text: string) => refusalOf(client, text);
const warnings = (doc: LdmDocument) => doc.commands[0]!.data.flatMap((d) => d.warning?.messages ?? []);
const dev = (name: string, props: Record<string, string> = {}): ItemSpec => ({ type: 'physio_device', props: { name, ...props } });
const pf = (name: string, props: Record<string, string> = {}): ItemSpec => ({ type: 'physio_device', props: { iov_pf_name: name, ...props } });

/** list-io as rows: name -> its properties. */
async function listIo(): Promise<Map<string, Record<string, string>>> {
  const r = await must(request('list-io'));
  const items = r.commands[0]!.data[0]!.envelope!.sections[0]!.items;
  if (!items.every((i) => i.type === 'physio_device')) throw new Error('list-io lists something other than physio_device items');
  return new Map(items.map((i) => [i.props.get('name')!, Object.fromEntries(i.props)]));
}
const columns = (row: Record<string, string> | undefined) => row && [row['type'], row['bus'], row['domain'], row['status']];

const PF0 = '/SYS/MB/NET0/IOVNET.PF0';
const PF1 = '/SYS/MB/NET0/IOVNET.PF1';

t.test('list-io: buses, endpoints and physical functions with their bus, domain and status', async (t) => {
  const io = await listIo();
  t.same([...io.keys()], ['pci_0', 'pci_1', '/SYS/MB/PCIE1', '/SYS/MB/PCIE2', '/SYS/MB/NET0', PF0, PF1], 'buses, endpoints, then functions');
  t.same(columns(io.get('pci_0')), ['BUS', 'pci_0', 'primary', 'IOV']);
  t.equal(io.get('pci_0')!['path'], 'pci@400');
  t.same(columns(io.get('pci_1')), ['BUS', 'pci_1', 'primary', '']);
  t.same(columns(io.get('/SYS/MB/NET0')), ['PCIE', 'pci_0', 'primary', 'OCC']);
  t.same(columns(io.get(PF0)), ['PF', 'pci_0', 'primary', '']);
  t.equal(io.get(PF0)!['class'], 'ETHERNET');
});

t.test('create-vf makes the next virtual function, with its own MAC address', async (t) => {
  const r = await must(request('create-vf', data(null, pf(PF0))));
  t.same(warnings(r), [`Created virtual function ${PF0}.VF0`], 'the client is told its name');
  const two = await must(request('create-vf', data(null, pf(PF0)), '-n 2'));
  t.same(warnings(two), [`Created virtual functions ${PF0}.VF1, ${PF0}.VF2`]);
  const io = await listIo();
  t.same(columns(io.get(`${PF0}.VF0`)), ['VF', 'pci_0', '', ''], 'a new VF belongs to no domain yet');
  const macs = [0, 1, 2].map((i) => io.get(`${PF0}.VF${i}`)!['mac-addr']);
  t.equal(new Set(macs).size, 3, 'each VF has a MAC address of its own');
  t.match(macs[0], /^00:14:4f:f[89ab]:/, "in Oracle's automatic range");
  // The PF can also be named by `name`, as other physio_device objects are.
  await must(request('create-vf', data(null, dev(PF1))));
  t.ok((await listIo()).has(`${PF1}.VF0`));
});

t.test('create-vf refusals: not a physical function, too many, I/O virtualization off', async (t) => {
  t.equal(await refused(request('create-vf', data(null, pf('/SYS/MB/NET0')))), '/SYS/MB/NET0 is not an SR-IOV physical function');
  t.equal(await refused(request('create-vf', data(null, pf('/SYS/MB/NET9/IOVNET.PF0')))), 'No physical I/O device /SYS/MB/NET9/IOVNET.PF0 on this machine');
  await must(request('create-vf', data(null, pf(PF0)), '-n max'));
  t.equal((await listIo()).has(`${PF0}.VF6`), true, '-n max fills the physical function');
  t.equal(await refused(request('create-vf', data(null, pf(PF0)))), `${PF0} can have at most 7 virtual functions and has 7`);
  t.equal(await refused(request('create-vf', data(null, pf(PF1)), '-n lots')), 'create-vf: -n takes a number of virtual functions or max, not "lots"');
  t.equal(await refused(request('create-vf', data(null, pf(PF1, { 'mac-addr': '00:14:4f:fa:00:01' })), '-n 2')), 'mac-addr names one device: give it only when creating one virtual function');
  t.equal(await refused(request('set-io', data(null, dev('pci_0', { iov_bus_enable_iov: 'off' })))), 'Bus pci_0 has 8 virtual function(s): destroy them before disabling I/O virtualization');
  // With every VF of pci_0 gone, its I/O virtualization can be switched off, and then create-vf is refused.
  await must(request('destroy-vf', data(null, pf(PF0)), '-n max'));
  await must(request('destroy-vf', data(null, pf(PF1))));
  await must(request('set-io', data(null, dev('pci_0', { iov_bus_enable_iov: 'off' }))));
  t.equal(columns((await listIo()).get('pci_0'))![3], '', 'no IOV status any more');
  t.equal(await refused(request('create-vf', data(null, pf(PF0)))), `I/O virtualization is not enabled on bus pci_0 of ${PF0}: enable it first (set-io iov_bus_enable_iov=on pci_0)`);
  await must(request('set-io', data(null, dev('pci_0', { iov_bus_enable_iov: 'on' }))));
  await must(request('create-vf', data(null, pf(PF0)), '-n 3'));
});

t.test('set-io sets the properties of a bus, a physical function and a virtual function; unknown ones by name', async (t) => {
  // The 3.2 guide's two examples: I/O virtualization on pci_1, unicast slots of a physical function.
  await must(request('set-io', data(null, dev('pci_1', { iov_bus_enable_iov: 'on' }))));
  await must(request('set-io', data(null, dev(PF1, { 'unicast-slots': '6' }))));
  const vf = `${PF0}.VF0`;
  await must(request('set-io', data(null, dev(vf, { 'mac-addr': '00:14:4F:FA:00:01', pvid: '12', vid: '20,21', mtu: '9000', 'alt-mac-addrs': 'auto,00:14:4f:fa:00:02' }))));
  const io = await listIo();
  t.equal(io.get('pci_1')!['status'], 'IOV');
  t.equal(io.get(PF1)!['unicast-slots'], '6');
  const row = io.get(vf)!;
  t.same([row['mac-addr'], row['pvid'], row['vid'], row['mtu']], ['00:14:4f:fa:00:01', '12', '20,21', '9000']);
  t.match(row['alt-mac-addrs'], /^00:14:4f:f[89ab]:[0-9a-f:]+,00:14:4f:fa:00:02$/, 'auto takes a free address');
  t.equal(await refused(request('set-io', data(null, dev(vf, { speed: '10G' })))), `Property speed cannot be set on ${vf} (settable: mac-addr, alt-mac-addrs, pvid, vid, mtu)`);
  t.equal(await refused(request('set-io', data(null, dev('/SYS/MB/PCIE1', { iov_bus_enable_iov: 'on' })))), 'Property iov_bus_enable_iov cannot be set on /SYS/MB/PCIE1 (it has no settable properties)');
  t.equal(await refused(request('set-io', data(null, dev(vf, { pvid: '4095' })))), 'Invalid value "4095" for pvid (valid: 1 to 4094)');
  t.equal(await refused(request('set-io', data(null, dev(`${PF0}.VF1`, { 'mac-addr': '00:14:4f:fa:00:01' })))), 'MAC address 00:14:4f:fa:00:01 is already in use');
  t.equal((await listIo()).get(vf)!['pvid'], '12', 'a refused set-io changes nothing');
});

t.test('virtual functions are assigned with add-io and remove-io; destroy-vf takes the last unassigned one', async (t) => {
  await must(request('add-vconscon', data(null, { type: 'vcc', props: { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' } })));
  await must(request('add-domain', data('ldg1')));
  await must(request('add-vcpu', data('ldg1', cpu(2))));
  await must(request('add-memory', data('ldg1', memory('1G'))));
  const last = `${PF0}.VF2`;
  await must(request('add-io', data('ldg1', dev(last))));
  t.equal((await listIo()).get(last)!['domain'], 'ldg1');
  const constraints = (await must(request('list-constraints', data('ldg1')))).commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items;
  t.ok(constraints.some((i) => i.type === 'physio_device' && i.props.get('name') === last), 'list-constraints lists the VF');
  t.equal(await refused(request('add-io', data('ldg1', dev(PF1)))), `${PF1} is a physical function: assign its endpoint, or create virtual functions (create-vf) and assign those`);
  t.equal(await refused(request('destroy-vf', data(null, dev(`${PF0}.VF0`)))), `Virtual functions are destroyed last first: ${last} must be destroyed before ${PF0}.VF0`);
  t.equal(await refused(request('destroy-vf', data(null, dev(last)))), `Virtual function ${last} is assigned to LDom ldg1: remove it from the domain first (remove-io)`);
  t.equal(await refused(request('remove-io', data('primary', dev('/SYS/MB/NET0')))), '/SYS/MB/NET0 has 3 virtual function(s): destroy them first (destroy-vf)');
  // A VF of an active domain keeps its settings until the domain stops.
  await must(request('bind-domain', data('ldg1')));
  await must(request('start-domain', data('ldg1')));
  t.equal(await refused(request('set-io', data(null, dev(last, { mtu: '1500' })))), `Virtual function ${last} is assigned to LDom ldg1, which is active: stop the domain to change it`);
  await must(request('stop-domain', data('ldg1')));
  await must(request('unbind-domain', data('ldg1')));
  await must(request('set-io', data(null, dev(last, { mtu: '1500' }))));
  t.equal(await refused(request('destroy-vf', data(null, dev(PF1)), '-n 3')), `${PF1} has no virtual functions`);
  t.equal(await refused(request('destroy-vf', data(null, dev(PF0)), '-n 4')), `Cannot destroy 4 virtual functions of ${PF0}: it has 3`);
});

t.test('virtual functions, their settings and assignments survive a restart', async (t) => {
  const before = await listIo();
  await stop();
  ({ agent, client, stop } = await agentOn(state));
  const after = await listIo();
  t.same([...after], [...before], 'list-io is the same');
  t.equal(after.get(`${PF0}.VF2`)!['domain'], 'ldg1');
  t.equal(after.get(`${PF0}.VF0`)!['mtu'], '9000');
  t.equal(after.get('pci_1')!['status'], 'IOV', 'bus settings too');
  // After the restart, the same rules: the next VF is numbered after the last.
  const r = await must(request('create-vf', data(null, pf(PF0))));
  t.same(warnings(r), [`Created virtual function ${PF0}.VF3`]);
});

t.test('a state file of an earlier version (no VFs, no newer domain properties) still loads', async (t) => {
  await stop();
  const file = join(state, 'domains.json');
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { domains: Record<string, unknown>[] };
  delete saved['vfs'];
  delete saved['pfs'];
  delete saved['iovBuses'];
  for (const d of saved.domains) {
    for (const key of ['extendedMapinSpace', 'rcAddPolicy', 'bootPolicy', 'shutdownGroup', 'maxCores']) delete d[key];
    // One device counter for disks and networks, as earlier versions kept.
    d['nextDeviceId'] = 0;
    d['io'] = (d['io'] as string[]).filter((x) => !x.includes('.VF'));
  }
  writeFileSync(file, JSON.stringify(saved));
  ({ agent, client, stop } = await agentOn(state));
  const io = await listIo();
  t.notOk([...io.keys()].some((n) => n.includes('.VF')), 'no virtual functions');
  t.equal(io.get('pci_1')!['status'], '', 'buses as the machine file says');
  const info = (await must(request('list-domain', data('ldg1')))).commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!;
  t.same([info.props.get('shutdown-group'), info.props.get('extended-mapin-space'), info.props.get('boot-policy')], ['15', 'off', 'warning'], 'newer properties get their defaults');
  await must(request('create-vf', data(null, pf(PF0))));
  t.equal(agent.ldm.snapshot.vfs?.[0]?.name, `${PF0}.VF0`);
});

t.test('later actions the agent does not model are refused by name, as not supported on this platform', async (t) => {
  const actions = [
    'add-vhba', 'set-vhba', 'remove-vhba', 'rescan-vhba', 'list-hba', 'add-vsan', 'remove-vsan',
    'list-vmapi', 'set-vmapi', 'remove-vmapi', 'list-rsrc-group', 'list-dependencies', 'list-netdev', 'list-netstat',
  ];
  for (const action of actions) {
    const r = await client.request(request(action, data('ldg1')));
    t.equal(r.commands[0]!.response?.status, 'failure', `${action} fails`);
    t.ok(messages(r).includes(`${action} is not supported on SPARC T4-1`), `${action}: named as not supported on this platform`, { messages: messages(r) });
  }
});

t.test('the machine file says which endpoints have SR-IOV functions, of which class', async (t) => {
  const bad = (io: unknown[]) => {
    try {
      machineFromJson({ io }, 'm.json');
      return 'accepted';
    } catch (err) {
      return (err as Error).message;
    }
  };
  const bus = { name: 'pci@300', kind: 'pci-bus', iov: true };
  t.equal(bad([bus, { name: '/SYS/X', kind: 'pcie-endpoint', sriov: { type: 'token-ring', maxVfs: 2 } }]), 'machine description m.json: io[1].sriov.type must be one of ethernet, fibrechannel, infiniband');
  t.equal(bad([{ ...bus, sriov: { type: 'ethernet', maxVfs: 2 } }]), 'machine description m.json: io[0].sriov: only a pcie-endpoint can have SR-IOV functions');
  t.equal(bad([bus, { name: '/SYS/X', kind: 'pcie-endpoint', bus: 'pci@900' }]), 'machine description m.json: io[1].bus pci@900 is not a pci-bus of this file');
  t.equal(bad([bus, bus]), 'machine description m.json: io[1].name pci@300 appears twice');

  // A Fibre Channel card: its VFs get world-wide names, and share the bandwidth.
  const machine = machineFromJson({ io: [bus, { name: '/SYS/MB/PCIE3', kind: 'pcie-endpoint', sriov: { type: 'fibrechannel', maxVfs: 4 } }] }, 'fc.json');
  const dir = join(root, 'fc');
  mkdirSync(dir, { mode: 0o700 });
  const ldm = await Ldm.open(machine, new StateStore(dir), () => {}, new Guests());
  const fcPf = '/SYS/MB/PCIE3/IOVFC.PF0';
  t.same(await ldm.createVf(fcPf, 2, [['bw-percent', '40']]), [`${fcPf}.VF0`, `${fcPf}.VF1`], 'FC physical functions are named IOVFC');
  const [vf0, vf1] = ldm.snapshot.vfs!;
  t.match(vf0!.portWwn, /^5[0-9a-f]:([0-9a-f]{2}:){6}[0-9a-f]{2}$/, 'a port WWN of its own');
  t.not(vf0!.portWwn, vf1!.portWwn);
  await t.rejects(ldm.setIoProps(vf1!.name, [['bw-percent', '70']]), { message: `The virtual functions of ${fcPf} would have 110% of its bandwidth (40% already given to the others): at most 100%` });
  await t.rejects(ldm.setIoProps(vf1!.name, [['port-wwn', vf0!.portWwn!]]), { message: `World-wide name ${vf0!.portWwn} is already used by ${vf0!.name}` });
  await t.rejects(ldm.setIoProps(vf1!.name, [['mtu', '1500']]), { message: `Property mtu cannot be set on ${vf1!.name} (settable: port-wwn, node-wwn, bw-percent)` });
  t.same(await ldm.destroyVf(fcPf, 'max'), [`${fcPf}.VF0`, `${fcPf}.VF1`]);
});

t.test('rc-add-policy=iov: a bus given to the domain gets I/O virtualization', async (t) => {
  const machine = machineFromJson({ io: [{ name: 'pci@300', kind: 'pci-bus' }, { name: 'pci@310', kind: 'pci-bus' }] }, 'two-buses.json');
  const dir = join(root, 'rc');
  mkdirSync(dir, { mode: 0o700 });
  let ldm = await Ldm.open(machine, new StateStore(dir), () => {}, new Guests());
  await ldm.setIo('primary', 'remove', 'pci_1');
  // The primary gives the bus away when it reboots: here, when the model opens again.
  ldm = await Ldm.open(machine, new StateStore(dir), () => {}, new Guests());
  await ldm.addDomain('ldg1', { rcAddPolicy: 'iov' });
  await ldm.addDomain('ldg2');
  t.equal(ldm.snapshot.iovBuses, undefined, 'the machine file says: no I/O virtualization yet');
  await ldm.setIo('ldg2', 'add', 'pci@310');
  t.equal(ldm.snapshot.iovBuses, undefined, 'a domain without the policy leaves it so');
  await ldm.setIo('ldg2', 'remove', 'pci@310');
  await ldm.setIo('ldg1', 'add', 'pci_1');
  t.same(ldm.snapshot.iovBuses, ['pci@310'], 'the pseudonym names the bus, and the policy turns I/O virtualization on');
});
