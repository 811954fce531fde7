/**
 * xml-examples/responses/ and xml-examples/events/ as the agent itself sends
 * them. One agent, one scripted administrator session in an order that makes
 * sense (services, a guest, its resources, bind and start, listings, then
 * back down), over real XMPP/TLS connections read byte for byte: for every
 * implemented action one request that succeeds and one that fails for a
 * reason an administrator really meets. A second connection registered for
 * every event class catches the events the session causes.
 *
 * Each captured document is compared with the committed file
 * (test/helpers/examples.ts lists them). With UPDATE_EXAMPLES=1 the files
 * are written instead:
 *
 *   UPDATE_EXAMPLES=1 npx tap test/examples-agent.test.ts
 *
 * The agent's output is deterministic for a given sequence of requests (UUIDs,
 * MAC addresses, host ids, strands, addresses, ports), so the files are stable.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { decodeText } from '../agent/xml/decode.ts';
import type { LdmDocument } from '../agent/xml/document.ts';
import { startTestAgent } from './helpers/agent.ts';
import { AGENT_ACTIONS, AGENT_EXAMPLES, exampleFile, lineDiff, UPDATE_COMMAND } from './helpers/examples.ts';
import { onlineRawPeer, type RawPeer } from './helpers/raw.ts';
import { cpu, data, mau, memory, request, variable, type ItemSpec } from './helpers/requests.ts';

const EXAMPLES_DIR = fileURLToPath(new URL('../xml-examples/', import.meta.url));
const UPDATE = process.env['UPDATE_EXAMPLES'] === '1';

const agent = await startTestAgent(t, {
  users: [
    ['admin', 'write', 'admin-secret'],
    ['monitor', 'read', 'monitor-secret'],
  ],
});
/** The administrator (write role): most of the session. */
const admin = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
/** A monitoring client (read role): event registrations, and one thing it may not do. */
const monitor = await onlineRawPeer(agent.port, 'monitor', 'monitor-secret');
/** Registered for every event class first thing: the events the session causes arrive here. */
const events = await onlineRawPeer(agent.port, 'monitor', 'monitor-secret');
t.teardown(() => [admin, monitor, events].forEach((p) => p.destroy()));

/** Path under xml-examples/ -> the document exactly as the agent sent it. */
const captured = new Map<string, string>();
/** Steps that did not go as scripted: nothing is written then. */
const deviations: string[] = [];

/** Send one document; the first <LDM_interface> the agent sends back, byte for byte. */
async function send(peer: RawPeer, text: string): Promise<string> {
  const mark = peer.text.length;
  peer.write(text);
  await peer.until(/<LDM_interface[\s>][\s\S]*?<\/LDM_interface>/, 10_000, mark);
  const seen = peer.text.slice(mark);
  const start = seen.search(/<LDM_interface[\s>]/);
  const end = seen.indexOf('</LDM_interface>', start) + '</LDM_interface>'.length;
  return seen.slice(start, end);
}

/** Every resp_msg of a response, at every level. */
function messagesOf(doc: LdmDocument): string[] {
  return [
    ...doc.commands.flatMap((c) => [...c.data.flatMap((d) => [...(d.response?.messages ?? []), ...(d.warning?.messages ?? [])]), ...(c.response?.messages ?? [])]),
    ...(doc.response?.messages ?? []),
  ];
}

type Expect = 'success' | { refused: string };

interface StepOptions {
  /** Who sends it (default: the administrator). */
  peer?: RawPeer;
  /** Capture the event with this action that the request causes, as events/<action>.xml. */
  event?: string;
}

/**
 * One request of the session. `example` names the file the response becomes
 * (`add-vcpu.success` -> responses/add-vcpu.success.xml), or null for a step
 * that only prepares the next ones. A refusal must carry `refused` in one of
 * its messages, so that a failure example fails for the reason it shows.
 */
async function step(t: Test, example: string | null, expect: Expect, text: string, options: StepOptions = {}): Promise<void> {
  const eventMark = events.text.length;
  const raw = await send(options.peer ?? admin, text);
  const doc = decodeText(raw, 'response');
  const label = example ?? `(setup) ${doc.commands.map((c) => c.action).join(', ')}`;
  const status = doc.response?.status;
  const messages = messagesOf(doc);
  let ok: boolean;
  if (expect === 'success') {
    ok = t.equal(status, 'success', `${label}: succeeds`, { messages });
  } else {
    ok = t.equal(status, 'failure', `${label}: fails`) && t.ok(messages.some((m) => m.includes(expect.refused)), `${label}: says "${expect.refused}"`, { messages });
  }
  const action = example?.match(/^(.*)\.(success|failure)$/)?.[1];
  if (action !== undefined) ok = t.same(doc.commands.map((c) => c.action), [action], `${label}: answers ${action}`) && ok;
  if (!ok) deviations.push(label);
  if (example !== null) {
    const path = `responses/${example}.xml`;
    if (captured.has(path)) t.fail(`${path} is captured twice`);
    captured.set(path, raw);
  }
  if (options.event) await captureEvent(t, options.event, eventMark);
}

/** The LDM_event with this action the events connection received since `mark`, byte for byte. */
async function captureEvent(t: Test, action: string, mark: number): Promise<void> {
  const one = new RegExp(`<LDM_event[\\s>](?:(?!</LDM_event>)[\\s\\S])*?<action>${action}</action>[\\s\\S]*?</LDM_event>`);
  try {
    await events.until(one, 10_000, mark);
  } catch (err) {
    deviations.push(`event ${action}`);
    t.fail(`the ${action} event arrives: ${(err as Error).message}`);
    return;
  }
  captured.set(`events/${action}.xml`, one.exec(events.text.slice(mark))![0]);
  t.pass(`the ${action} event arrives`);
}

// ---------------------------------------------------------------- request bodies

const vds = (service: string): ItemSpec => ({ type: 'vds', props: { service_name: service } });
const volume = (vol: string, service: string, dev: string, opts?: string): ItemSpec => ({
  type: 'vds_volume',
  props: { vol_name: vol, service_name: service, block_dev: dev, ...(opts ? { vol_opts: opts } : {}) },
});
const vsw = (service: string, props: Record<string, string> = {}, rasd: Record<string, string> = {}): ItemSpec => ({ type: 'vsw', props: { service_name: service, ...props }, rasd });
const vcc = (service: string, props: Record<string, string> = {}): ItemSpec => ({ type: 'vcc', props: { service_name: service, ...props } });
const disk = (name: string, vol: string, service = 'primary-vds0'): ItemSpec => ({ type: 'disk', props: { vdisk_name: name, vol_name: vol, service_name: service } });
const vnet = (name: string, props: Record<string, string> = {}): ItemSpec => ({ type: 'network', props: { vnet_name: name, ...props } });
const io = (name: string, props: Record<string, string> = {}): ItemSpec => ({ type: 'physio_device', props: { name, ...props } });
const info = (props: Record<string, string>): ItemSpec => ({ type: 'ldom_info', props });
const spconfig = (name: string): ItemSpec => ({ type: 'spconfig', props: { spconfig_name: name } });
const console_ = (props: Record<string, string>): ItemSpec => ({ type: 'console', props });

/** A request whose <data> is written out by hand (the malformed objects of the registration failures). */
const withData = (action: string, dataXml: string) => request(action, dataXml);
const CONTENT_WITHOUT_ID = '<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type" ovf:name="ldg1"/></Envelope></data>';
const SECTION_WITHOUT_ENVELOPE =
  '<data version="3.0"><Section xsi:type="ovf:ResourceAllocationSection_Type"><Item><rasd:OtherResourceType>cpu</rasd:OtherResourceType></Item></Section></data>';
const ITEM_WITHOUT_TYPE =
  '<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"><Section xsi:type="ovf:ResourceAllocationSection_Type">' +
  '<Item><rasd:ResourceType>cpu</rasd:ResourceType></Item></Section></Content></Envelope></data>';
const PROPERTY_WITHOUT_KEY =
  '<data version="3.0"><Envelope><References/><Section xsi:type="ovf:ResourceAllocationSection_Type">' +
  '<Item><rasd:OtherResourceType>spconfig</rasd:OtherResourceType><gprop:GenericProperty name="spconfig_name">config-ldg1</gprop:GenericProperty></Item>' +
  '</Section></Envelope></data>';
const FOREIGN_IN_DATA = '<data version="3.0"><events>all</events></data>';
const TWO_ENVELOPES = '<data version="3.0"><Envelope><References/></Envelope><Envelope><References/></Envelope></data>';

/** requests/several-commands.xml as a client sends it: in an XMPP stream, without the XML declaration. */
const SEVERAL_COMMANDS = readFileSync(join(EXAMPLES_DIR, 'requests', 'several-commands.xml'), 'utf8').replace(/^<\?xml[^?]*\?>\s*/, '');

// ---------------------------------------------------------------- the session

t.test('the scripted administrator session', async (t) => {
  // A monitoring client registers for everything before anything happens.
  await step(t, 'reg-all-events.success', 'success', request('reg-all-events'), { peer: events });

  // The monitoring application registers class by class; one object it sends is malformed each time.
  await step(t, 'reg-domain-events.success', 'success', request('reg-domain-events'), { peer: monitor });
  await step(t, 'reg-domain-events.failure', { refused: 'Content element has no id' }, withData('reg-domain-events', CONTENT_WITHOUT_ID), { peer: monitor });
  await step(t, 'reg-resource-events.success', 'success', request('reg-resource-events'), { peer: monitor });
  await step(t, 'reg-resource-events.failure', { refused: 'Item has no rasd:OtherResourceType' }, withData('reg-resource-events', ITEM_WITHOUT_TYPE), { peer: monitor });
  await step(t, 'reg-hardware-events.success', 'success', request('reg-hardware-events'), { peer: monitor });
  await step(t, 'reg-hardware-events.failure', { refused: 'GenericProperty has no key' }, withData('reg-hardware-events', PROPERTY_WITHOUT_KEY), { peer: monitor });
  await step(t, 'reg-progress-events.success', 'success', request('reg-progress-events'), { peer: monitor });
  await step(t, 'reg-progress-events.failure', { refused: 'unexpected <Section> in <data>' }, withData('reg-progress-events', SECTION_WITHOUT_ENVELOPE), { peer: monitor });
  await step(t, 'reg-all-events.failure', { refused: 'unexpected <events> in <data>' }, withData('reg-all-events', FOREIGN_IN_DATA), { peer: monitor });

  // Services on the control domain: a disk server and a volume, a switch, a console concentrator.
  await step(t, 'add-vdiskserver.success', 'success', request('add-vdiskserver', data(null, vds('primary-vds0'))));
  await step(t, 'add-vdiskserver.failure', { refused: 'A service named primary-vds0 already exists' }, request('add-vdiskserver', data(null, vds('primary-vds0'))));
  await step(t, 'add-vdiskserverdevice.success', 'success', request('add-vdiskserverdevice', data(null, volume('vol1', 'primary-vds0', '/dev/zvol/dsk/ldoms/ldg1-disk0'))));
  await step(
    t,
    'add-vdiskserverdevice.failure',
    { refused: 'Invalid volume option(s): readonly' },
    request('add-vdiskserverdevice', data(null, volume('vol2', 'primary-vds0', '/dev/zvol/dsk/ldoms/ldg1-disk1', 'readonly'))),
  );
  await step(t, 'add-vswitch.success', 'success', request('add-vswitch', data('primary', vsw('primary-vsw0', { dev_path: 'net0' }))));
  await step(
    t,
    'add-vswitch.failure',
    { refused: 'Invalid MAC address: 00:14:4f:f9:0g:01' },
    request('add-vswitch', data('primary', vsw('primary-vsw1', { dev_path: 'net1' }, { Address: '00:14:4f:f9:0g:01' }))),
  );
  await step(t, 'add-vconscon.success', 'success', request('add-vconscon', data('primary', vcc('primary-vcc0', { min_port: '5000', max_port: '5100' }))));
  await step(
    t,
    'add-vconscon.failure',
    { refused: 'Console port range overlaps that of primary-vcc0' },
    request('add-vconscon', data('primary', vcc('primary-vcc1', { min_port: '5050', max_port: '5150' }))),
  );
  await step(t, 'set-vswitch.success', 'success', request('set-vswitch', data(null, vsw('primary-vsw0', { mtu: '9000' }))));
  await step(t, 'set-vswitch.failure', { refused: 'Virtual switch primary-vsw1 not found' }, request('set-vswitch', data(null, vsw('primary-vsw1', { mtu: '9000' }))));
  await step(t, 'set-vconscon.success', 'success', request('set-vconscon', data(null, vcc('primary-vcc0', { max_port: '5200' }))));
  await step(t, 'set-vconscon.failure', { refused: 'Invalid console port range 5300-5200' }, request('set-vconscon', data(null, vcc('primary-vcc0', { min_port: '5300' }))));
  await step(t, 'list-services.success', 'success', request('list-services'));
  await step(t, 'list-services.failure', { refused: 'LDom ldg1 does not exist' }, request('list-services', data('ldg1')));

  // A guest, ldg1: 8 virtual CPUs, 4G, a crypto unit, a disk, a network, its variables and console.
  await step(t, 'add-domain.success', 'success', request('add-domain', data('ldg1')));
  await step(t, 'add-domain.failure', { refused: 'LDom ldg1 already exists' }, request('add-domain', data('ldg1')));
  await step(t, 'add-vcpu.success', 'success', request('add-vcpu', data('ldg1', cpu(8))), { event: 'add-vcpu' });
  await step(t, 'add-memory.success', 'success', request('add-memory', data('ldg1', memory('4G'))));
  await step(t, 'add-mau.success', 'success', request('add-mau', data('ldg1', mau(1))), { event: 'add-crypto' });
  await step(t, 'add-vdisk.success', 'success', request('add-vdisk', data('ldg1', disk('vdisk1', 'vol1'))));
  await step(t, 'add-vdisk.failure', { refused: 'Volume vol2@primary-vds0 not found' }, request('add-vdisk', data('ldg1', disk('vdisk2', 'vol2'))));
  await step(t, 'add-vnet.success', 'success', request('add-vnet', data('ldg1', vnet('vnet1', { service_name: 'primary-vsw0' }))));
  await step(t, 'add-vnet.failure', { refused: 'Virtual switch primary-vsw1 not found' }, request('add-vnet', data('ldg1', vnet('vnet2', { service_name: 'primary-vsw1' }))));
  await step(t, 'add-variable.success', 'success', request('add-variable', data('ldg1', variable('boot-device', 'vdisk1'))));
  await step(t, 'add-variable.failure', { refused: 'Variable boot-device already exists in LDom ldg1' }, request('add-variable', data('ldg1', variable('boot-device', 'vnet1'))));
  await step(t, 'set-variable.success', 'success', request('set-variable', data('ldg1', variable('boot-device', 'vdisk1 vnet1'))));
  await step(t, 'set-variable.failure', { refused: 'LDom ldg9 does not exist' }, request('set-variable', data('ldg9', variable('auto-boot?', 'false'))));
  await step(t, 'set-domain.success', 'success', request('set-domain', data('ldg1', info({ 'failure-policy': 'reset' }))));
  await step(t, 'set-domain.failure', { refused: 'Invalid value "restart" for failure-policy' }, request('set-domain', data('ldg1', info({ 'failure-policy': 'restart' }))));
  await step(t, 'set-vconsole.success', 'success', request('set-vconsole', data('ldg1', console_({ port: '5010', group: 'guests' }))));
  await step(t, 'list-constraints.success', 'success', request('list-constraints', data('ldg1')));
  await step(t, 'list-constraints.failure', { refused: 'LDom ldg2 does not exist' }, request('list-constraints', data('ldg2')));

  // A second guest in one document of three commands: the third fails (the bus is the primary's).
  await step(t, 'several-commands', { refused: 'Physical I/O device pci@500 is assigned to LDom primary' }, SEVERAL_COMMANDS);
  await step(t, 'bind-domain.failure', { refused: 'LDom ldg2 has no memory' }, request('bind-domain', data('ldg2')));
  await step(t, 'add-io.failure', { refused: 'No physical I/O device pci@300 on this machine' }, request('add-io', data('ldg2', io('pci@300'))));
  await step(t, 'remove-io.failure', { refused: 'Physical I/O device pci@400 is not assigned to LDom ldg2' }, request('remove-io', data('ldg2', io('pci@400'))));

  // ldg1 is bound: its resources now come from the machine's free ones.
  await step(t, 'bind-domain.success', 'success', request('bind-domain', data('ldg1')));
  await step(t, 'add-memory.failure', { refused: 'Not enough free memory present to meet this request' }, request('add-memory', data('ldg1', memory('64G'))));
  await step(t, 'add-vcpu.failure', { refused: 'Not enough free CPUs to meet this request' }, request('add-vcpu', data('ldg1', cpu(64))));
  await step(t, 'set-vcpu.success', 'success', request('set-vcpu', data('ldg1', cpu(16))));
  await step(t, 'set-vcpu.failure', { refused: 'Cannot remove the last virtual CPU of LDom ldg1 while it is bound or active' }, request('set-vcpu', data('ldg1', cpu(0))));
  await step(t, 'set-mau.success', 'success', request('set-mau', data('ldg1', mau(2))));
  await step(t, 'set-mau.failure', { refused: 'mau item is missing rasd:AllocationUnits' }, request('set-mau', data('ldg1', { type: 'mau', props: { number: '2' } })));
  await step(t, 'add-mau.failure', { refused: 'Not enough free crypto units on the cores of LDom ldg1' }, request('add-mau', data('ldg1', mau(4))));
  await step(t, 'set-memory.failure', { refused: '"4GiB" is not a size' }, request('set-memory', data('ldg1', memory('4GiB'))));

  // The control domain: a PCIe slot taken away and given back (a delayed reconfiguration), cancelled.
  await step(t, 'remove-io.success', 'success', request('remove-io', data('primary', io('/SYS/MB/PCIE2'))));
  await step(t, 'set-vnet.failure', { refused: 'A delayed reconfiguration of the primary domain is pending' }, request('set-vnet', data('ldg1', vnet('vnet1', { pvid: '10' }))));
  await step(t, 'add-io.success', 'success', request('add-io', data('primary', io('/SYS/MB/PCIE2'))));
  await step(t, 'remove-reconf.success', 'success', request('remove-reconf', data('primary')));
  await step(t, 'remove-reconf.failure', { refused: 'No delayed reconfiguration is pending on LDom primary' }, request('remove-reconf', data('primary')));
  await step(t, 'set-vnet.success', 'success', request('set-vnet', data('ldg1', vnet('vnet1', { pvid: '10' }))));
  await step(t, 'set-memory.success', 'success', request('set-memory', data('primary', memory('8G'))));
  await step(t, 'cancel-operation.success', 'success', request('cancel-operation', data('primary'), 'reconf'));
  await step(t, 'cancel-operation.failure', { refused: 'No delayed reconfiguration is pending on LDom primary' }, request('cancel-operation', data('primary'), 'reconf'));

  // Saved to the service processor, started, listed.
  await step(t, 'add-spconfig.success', 'success', request('add-spconfig', data(null, spconfig('config-ldg1'))), { event: 'add-spconfig' });
  await step(t, 'add-spconfig.failure', { refused: 'SP configuration config-ldg1 already exists' }, request('add-spconfig', data(null, spconfig('config-ldg1'))));
  await step(t, 'start-domain.success', 'success', request('start-domain', data('ldg1')), { event: 'start-domain' });
  await step(t, 'start-domain.failure', { refused: 'LDom ldg2 is not bound: bind it before starting it' }, request('start-domain', data('ldg2')));
  await step(t, 'set-vconsole.failure', { refused: 'its console port can only be changed while it is not running' }, request('set-vconsole', data('ldg1', console_({ port: '5020' }))));
  await step(t, 'list-domain.success', 'success', request('list-domain'));
  await step(t, 'list-domain.failure', { refused: 'LDom ldg3 does not exist' }, request('list-domain', data('ldg3')));
  await step(t, 'list-bindings.success', 'success', request('list-bindings', data('ldg1')));
  await step(t, 'list-bindings.failure', { refused: 'LDom ldg3 does not exist' }, request('list-bindings', data('ldg3')));
  await step(t, 'list-devices.success', 'success', request('list-devices'));
  await step(t, 'list-devices.failure', { refused: 'Content element has no id' }, request('list-devices', '<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type"/></Envelope></data>'));
  await step(t, 'list-variable.success', 'success', request('list-variable', data('ldg1')));
  await step(t, 'list-variable.failure', { refused: 'LDom ldg3 does not exist' }, request('list-variable', data('ldg3')));
  await step(t, 'list-spconfig.success', 'success', request('list-spconfig'));
  await step(t, 'list-spconfig.failure', { refused: 'Item has no rasd:OtherResourceType' }, request('list-spconfig', '<data version="3.0"><Envelope><References/><Section xsi:type="ovf:ResourceAllocationSection_Type"><Item><gprop:GenericProperty key="spconfig_name">x</gprop:GenericProperty></Item></Section></Envelope></data>'));

  // Shrinking the running guest.
  await step(t, 'remove-mau.success', 'success', request('remove-mau', data('ldg1', mau(1))));
  await step(t, 'remove-mau.failure', { refused: 'Cannot remove 4 crypto units from LDom ldg1: it has 1' }, request('remove-mau', data('ldg1', mau(4))));
  await step(t, 'remove-vcpu.success', 'success', request('remove-vcpu', data('ldg1', cpu(8))));
  await step(t, 'remove-vcpu.failure', { refused: 'Cannot remove 32 virtual CPUs from LDom ldg1: it has 8' }, request('remove-vcpu', data('ldg1', cpu(32))));
  await step(t, 'remove-memory.success', 'success', request('remove-memory', data('ldg1', memory('1G'))));
  await step(t, 'remove-memory.failure', { refused: 'Cannot remove 8G memory from LDom ldg1: it has 3G' }, request('remove-memory', data('ldg1', memory('8G'))));

  // Taking it all down: first in the wrong order, then in the right one.
  await step(t, 'remove-vswitch.failure', { refused: 'primary-vsw0 is in use by LDom ldg1' }, request('remove-vswitch', data(null, vsw('primary-vsw0'))));
  await step(t, 'remove-vdiskserverdevice.failure', { refused: 'vol1@primary-vds0 is in use by LDom ldg1' }, request('remove-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0' } })));
  await step(t, 'remove-vdiskserver.failure', { refused: 'primary-vds0 is in use by LDom ldg1' }, request('remove-vdiskserver', data(null, vds('primary-vds0'))));
  await step(t, 'remove-vconscon.failure', { refused: 'primary-vcc0 is in use by LDom ldg1' }, request('remove-vconscon', data(null, vcc('primary-vcc0'))));
  await step(t, 'unbind-domain.failure', { refused: 'LDom ldg1 is active: stop it before unbinding it' }, request('unbind-domain', data('ldg1')));
  await step(t, 'remove-domain.failure', { refused: 'LDom ldg1 is active: stop and unbind it before removing it' }, request('remove-domain', data('ldg1')));
  await step(t, 'stop-domain.failure', { refused: 'Authorization failed: user monitor (role read) may not run stop-domain' }, request('stop-domain', data('ldg1')), { peer: monitor });
  await step(t, 'stop-domain.success', 'success', request('stop-domain', data('ldg1')));
  await step(t, 'unbind-domain.success', 'success', request('unbind-domain', data('ldg1')));
  await step(t, 'remove-variable.success', 'success', request('remove-variable', data('ldg1', variable('boot-device'))));
  await step(t, 'remove-variable.failure', { refused: 'Variable auto-boot? not found in LDom ldg1' }, request('remove-variable', data('ldg1', variable('auto-boot?'))));
  await step(t, 'remove-vnet.success', 'success', request('remove-vnet', data('ldg1', vnet('vnet1'))));
  await step(t, 'remove-vnet.failure', { refused: 'LDom ldg1 has no vnet named vnet1' }, request('remove-vnet', data('ldg1', vnet('vnet1'))));
  // Removals name what they remove, nothing more (other properties would be answered with a warning that they are ignored).
  await step(t, 'remove-vdisk.success', 'success', request('remove-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'vdisk1' } })));
  await step(t, 'remove-vdisk.failure', { refused: 'LDom ldg1 has no vdisk named vdisk1' }, request('remove-vdisk', data('ldg1', { type: 'disk', props: { vdisk_name: 'vdisk1' } })));
  // SR-IOV on the control domain's on-board network device: a virtual function made, set, given to ldg2, listed, destroyed.
  const PF0 = '/SYS/MB/NET0/IOVNET.PF0';
  await step(t, 'create-vf.success', 'success', request('create-vf', data(null, { type: 'physio_device', props: { iov_pf_name: PF0, pvid: '10', mtu: '9000' } })));
  await step(t, 'create-vf.failure', { refused: '/SYS/MB/NET0 is not an SR-IOV physical function' }, request('create-vf', data(null, { type: 'physio_device', props: { iov_pf_name: '/SYS/MB/NET0' } })));
  await step(t, 'set-io.success', 'success', request('set-io', data(null, io('pci_1', { iov_bus_enable_iov: 'on' }))));
  await step(t, 'set-io.failure', { refused: `Property speed cannot be set on ${PF0}.VF0` }, request('set-io', data(null, io(`${PF0}.VF0`, { speed: '10G' }))));
  await step(t, null, 'success', request('add-io', data('ldg2', io(`${PF0}.VF0`))));
  // No migration has run on this agent: an empty list, and a domain no migration names.
  await step(t, 'list-migrations.success', 'success', request('list-migrations'));
  await step(t, 'list-migrations.failure', { refused: 'No migration of LDom ldg1 is known' }, request('list-migrations', data('ldg1')));
  await step(t, 'list-io.success', 'success', request('list-io'));
  await step(t, 'list-io.failure', { refused: 'Content element has no id' }, request('list-io', '<data version="3.0"><Envelope><References/><Content xsi:type="ovf:VirtualSystem_Type"/></Envelope></data>'));
  await step(t, 'destroy-vf.failure', { refused: `Virtual function ${PF0}.VF0 is assigned to LDom ldg2` }, request('destroy-vf', data(null, io(`${PF0}.VF0`))));
  await step(t, null, 'success', request('remove-io', data('ldg2', io(`${PF0}.VF0`))));
  await step(t, 'destroy-vf.success', 'success', request('destroy-vf', data(null, io(`${PF0}.VF0`))));

  await step(t, 'remove-domain.success', 'success', request('remove-domain', data('ldg1')));
  await step(t, null, 'success', request('remove-domain', data('ldg2')));
  await step(t, 'remove-vswitch.success', 'success', request('remove-vswitch', data(null, vsw('primary-vsw0'))));
  await step(t, 'remove-vdiskserverdevice.success', 'success', request('remove-vdiskserverdevice', data(null, { type: 'vds_volume', props: { vol_name: 'vol1', service_name: 'primary-vds0' } })));
  await step(t, 'remove-vdiskserver.success', 'success', request('remove-vdiskserver', data(null, vds('primary-vds0'))));
  await step(t, 'remove-vconscon.success', 'success', request('remove-vconscon', data(null, vcc('primary-vcc0'))));
  await step(t, 'set-spconfig.success', 'success', request('set-spconfig', data(null, spconfig('factory-default'))));
  await step(t, 'set-spconfig.failure', { refused: 'SP configuration config-ldg2 not found' }, request('set-spconfig', data(null, spconfig('config-ldg2'))));
  await step(t, 'remove-spconfig.success', 'success', request('remove-spconfig', data(null, spconfig('config-ldg1'))));
  await step(t, 'remove-spconfig.failure', { refused: 'The factory-default SP configuration cannot be removed' }, request('remove-spconfig', data(null, spconfig('factory-default'))));

  // The monitoring clients unregister.
  await step(t, 'unreg-domain-events.success', 'success', request('unreg-domain-events'), { peer: monitor });
  await step(t, 'unreg-domain-events.failure', { refused: 'Content element has no id' }, withData('unreg-domain-events', CONTENT_WITHOUT_ID), { peer: monitor });
  await step(t, 'unreg-resource-events.success', 'success', request('unreg-resource-events'), { peer: monitor });
  await step(t, 'unreg-resource-events.failure', { refused: 'Item has no rasd:OtherResourceType' }, withData('unreg-resource-events', ITEM_WITHOUT_TYPE), { peer: monitor });
  await step(t, 'unreg-hardware-events.success', 'success', request('unreg-hardware-events'), { peer: monitor });
  await step(t, 'unreg-hardware-events.failure', { refused: 'GenericProperty has no key' }, withData('unreg-hardware-events', PROPERTY_WITHOUT_KEY), { peer: monitor });
  await step(t, 'unreg-progress-events.success', 'success', request('unreg-progress-events'), { peer: monitor });
  await step(t, 'unreg-progress-events.failure', { refused: 'unexpected <Section> in <data>' }, withData('unreg-progress-events', SECTION_WITHOUT_ENVELOPE), { peer: monitor });
  await step(t, 'unreg-all-events.success', 'success', request('unreg-all-events'), { peer: events });
  await step(t, 'unreg-all-events.failure', { refused: 'data holds more than one <Envelope>' }, withData('unreg-all-events', TWO_ENVELOPES), { peer: events });

  // Documents the agent cannot use at all.
  await step(t, 'unknown-action', { refused: 'Unknown action: ls-dom' }, request('ls-dom'));
  await step(
    t,
    'no-cmd',
    { refused: '<LDM_interface> contains no <cmd> element' },
    '<LDM_interface version="1.3"><command><action>list-domain</action></command></LDM_interface>',
  );
});

t.test('a document that is not well-formed ends the XMPP stream instead (no LDM_interface answer)', async (t) => {
  const peer = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  t.teardown(() => peer.destroy());
  peer.write('<LDM_interface version="1.3">\n  <cmd>\n    <action>list-domain</actoin>\n  </cmd>\n</LDM_interface>\n');
  const seen = await peer.until(/<\/stream:stream>/, 10_000);
  t.notMatch(seen, /<LDM_interface/, 'no LDM_interface document');
  t.match(seen, /<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/, 'a not-well-formed stream error');
  t.match(seen, /XML document is not well-formed \(line 3\): /, 'its text names the line');
  t.ok(await peer.closedWithin(5000), 'and the connection is closed');
});

t.test('every agent-produced example is captured, and no other', async (t) => {
  t.same([...captured.keys()].sort(), [...AGENT_EXAMPLES].sort(), 'the session captured exactly the listed files');
  const answered = new Set([...captured.keys()].map((p) => p.match(/^responses\/(.*)\.(?:success|failure)\.xml$/)?.[1]).filter(Boolean));
  t.same(AGENT_ACTIONS.filter((a) => !answered.has(a)), [], 'every implemented action is answered');
});

t.test(UPDATE ? 'UPDATE_EXAMPLES=1: the examples are written' : 'the committed examples are what the agent sends', async (t) => {
  if (UPDATE) {
    if (deviations.length > 0) return void t.fail(`not writing: the session did not go as scripted (${deviations.join('; ')})`);
    for (const [path, document] of [...captured].sort(([a], [b]) => a.localeCompare(b))) {
      const file = join(EXAMPLES_DIR, path);
      const text = exampleFile(document);
      const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
      t.comment(`UPDATE_EXAMPLES=1: ${before === undefined ? 'created' : before === text ? 'unchanged' : 'rewrote'} xml-examples/${path}`);
    }
    t.comment(`wrote ${captured.size} files: review them with git diff xml-examples/ before committing`);
    return;
  }
  for (const path of AGENT_EXAMPLES) {
    const document = captured.get(path);
    if (document === undefined) continue; // reported above
    const file = join(EXAMPLES_DIR, path);
    const actual = exampleFile(document);
    if (!existsSync(file)) {
      t.fail(`xml-examples/${path} is missing: run ${UPDATE_COMMAND} and commit it`);
      continue;
    }
    const committed = readFileSync(file, 'utf8');
    if (committed === actual) t.pass(`xml-examples/${path} is what the agent sends`);
    else {
      t.fail(
        `xml-examples/${path} differs from what the agent sends now. If the change is intended, run ${UPDATE_COMMAND} and review the diff (git diff xml-examples/)`,
        { diff: lineDiff(committed, actual, [`xml-examples/${path} (committed)`, `xml-examples/${path} (agent)`]) },
      );
    }
  }
});
