/**
 * Writes xml-examples/responses/ and xml-examples/events/ with the agent's own
 * codec, so the examples are byte for byte what the agent emits.
 *
 *   npx tsx xml-examples/generate.ts
 *
 * Responses start from the hand-written request of the same action
 * (requests/<action>.xml, decoded as the agent decodes it): the object-level
 * outcome is filled in here, in place of the handlers, and completeResponse()
 * adds the command and overall levels exactly as the agent does.
 * test/examples.test.ts checks that the committed files equal this output.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XmlError } from '../agent/errors.ts';
import { decodeRequest, type DocumentKind } from '../agent/xml/decode.ts';
import {
  failure,
  item,
  success,
  type Command,
  type Content,
  type Data,
  type Item,
  type LdmDocument,
  type Section,
} from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { completeResponse, describeXmlError, overallFailure } from '../agent/xml/respond.ts';

export const EXAMPLES_DIR = dirname(fileURLToPath(import.meta.url));

/** One generated file: its path under xml-examples/, how to decode it, and its typed document. */
export interface Example {
  path: string;
  kind: DocumentKind;
  doc: LdmDocument;
}

/** The text written for an example: exactly what encodeDocument gives, with an XML declaration. */
export function render(doc: LdmDocument): string {
  return encodeDocument(doc, { declaration: true });
}

// ---------------------------------------------------------------- building blocks

/** The hand-written request for an action, decoded as the agent would. */
function request(file: string): LdmDocument {
  return decodeRequest(readFileSync(join(EXAMPLES_DIR, 'requests', file), 'utf8'));
}

/** Requests for the failure examples that are not among the hand-written files. */
function requestText(body: string): LdmDocument {
  return decodeRequest(`<LDM_interface version="1.3">${body}</LDM_interface>`);
}

function withUuid(it: Item, uuid: string): Item {
  it.uuid = uuid;
  return it;
}

function withBindings(it: Item, bindings: Item[]): Item {
  it.bindings = bindings;
  return it;
}

const section = (items: Item[]): Section => ({ type: 'ResourceAllocationSection_Type', items });
const domain = (id: string, items: Item[]): Content => ({ id, type: 'VirtualSystem_Type', sections: [section(items)] });
const listed = (contents: Content[], sections: Section[] = []): Data => ({
  version: '3.0',
  envelope: { contents, sections },
  response: success(),
});

/** The first object of the first command: where the single-object examples put their outcome. */
function firstData(doc: LdmDocument): Data {
  const data = doc.commands[0]?.data[0];
  if (!data) throw new Error('example request has no <data>');
  return data;
}

/** Response in which the (only) object failed with these messages. */
function objectFailure(doc: LdmDocument, ...messages: string[]): LdmDocument {
  firstData(doc).response = failure(...messages);
  return completeResponse(doc);
}

/** Response in which the (only) command is answered by a listing instead of its request data. */
function listing(doc: LdmDocument, data: Data[]): LdmDocument {
  const cmd: Command = doc.commands[0]!;
  cmd.data = data;
  return completeResponse(doc);
}

// ---------------------------------------------------------------- the simulated machine's state

/** The reporting host of progress events (the migration source). */
const HOST = 't4-a';

const primaryInfo = () =>
  withUuid(
    item(
      'ldom_info',
      { state: 'active', flags: '-n-cv-', hostid: '0x84f8a2c3', 'failure-policy': 'ignore', 'cpu-arch': 'native' },
      { Address: '00:14:4f:f8:6c:1a' },
    ),
    '5e2f3b4a-91c7-4d0e-b6a8-3f1c2d4e5a60',
  );

const ldg1Info = (state = 'active', flags = '-n----') =>
  withUuid(
    item(
      'ldom_info',
      { state, flags, hostid: '0x84f9e8b1', 'failure-policy': 'ignore', 'cpu-arch': 'native' },
      { Address: '00:14:4f:fa:0c:38' },
    ),
    '0c6d2b8e-7a41-4f3c-9e25-b81d5a7c4f12',
  );

const ldg2Info = () =>
  withUuid(
    item(
      'ldom_info',
      { state: 'inactive', flags: '------', hostid: '0x84fb17d6', 'failure-policy': 'ignore', 'cpu-arch': 'native' },
      { Address: '00:14:4f:fb:2e:90' },
    ),
    'a4e71c3f-2d58-4b96-8c0a-6e9f1b3d7c25',
  );

const cpu = (n: number) => item('cpu', {}, { AllocationUnits: String(n) });
const mau = (n: number) => item('mau', {}, { AllocationUnits: String(n) });
const memory = (size: string) => item('memory', {}, { AllocationUnits: size });
const vdisk1 = () => item('disk', { vdisk_name: 'vdisk1', service_name: 'primary-vds0', vol_name: 'vol1', timeout: '60' });
const vnet1 = () =>
  item('network', { vnet_name: 'vnet1', service_name: 'primary-vsw0' }, { Address: '00:14:4f:f8:5a:21' });
const console1 = () => item('console', { port: '5001', service_name: 'primary-vcc0', group: 'ldg1' });
const variable = (name: string, value: string) => item('var', { name, value });

// ---------------------------------------------------------------- responses

const INVALID_DOMAIN = 'Invalid domain name: ldg9';
const namedLdg9 = (action: string) =>
  requestText(
    `<cmd><action>${action}</action><data version="3.0"><Envelope><References/>` +
      `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg9"/></Envelope></data></cmd>`,
  );

function listDomain(): LdmDocument {
  return listing(request('list-domain.xml'), [
    listed([domain('primary', [primaryInfo(), cpu(8), mau(1), memory('4G'), item('physio_device', { name: 'pci@400' })])]),
    listed([domain('ldg1', [ldg1Info(), cpu(8), memory('4G'), vdisk1(), vnet1(), console1()])]),
    listed([domain('ldg2', [ldg2Info(), cpu(16), memory('8G')])]),
  ]);
}

function listBindings(): LdmDocument {
  const strands = Array.from({ length: 8 }, (_, vid) =>
    item('cpu', { vid: String(vid), pid: String(8 + vid), cid: '1' }),
  );
  return listing(request('list-bindings.xml'), [
    listed([
      domain('ldg1', [
        ldg1Info(),
        withBindings(cpu(8), strands),
        withBindings(memory('4G'), [item('memory', { ra: '0x8000000', pa: '0x108000000', size: '4G' })]),
        withBindings(vdisk1(), [item('disk', { id: '0', device: 'disk@0', server: 'primary' })]),
        withBindings(vnet1(), [
          item('network', { id: '0', device: 'network@0', peer: 'primary-vsw0@primary', mtu: '1500' }),
        ]),
        withBindings(console1(), [item('console', { port: '5001', service: 'primary-vcc0@primary' })]),
      ]),
    ]),
  ]);
}

function listServices(): LdmDocument {
  return listing(request('list-services.xml'), [
    listed([
      domain('primary', [
        item('vcc', { service_name: 'primary-vcc0', min_port: '5000', max_port: '5100' }),
        item(
          'vsw',
          {
            service_name: 'primary-vsw0',
            dev_path: 'nxge0',
            'default-vlan-id': '1',
            pvid: '1',
            mtu: '1500',
            id: '0',
            inter_vnet_link: 'on',
          },
          { Address: '00:14:4f:fb:3d:82' },
        ),
        item('vds', { service_name: 'primary-vds0' }),
        item('vds_volume', {
          vol_name: 'vol1',
          service_name: 'primary-vds0',
          block_dev: '/dev/dsk/c2t1d0s2',
          vol_opts: 'excl',
        }),
      ]),
    ]),
  ]);
}

function listConstraints(): LdmDocument {
  return listing(request('list-constraints.xml'), [
    listed([
      domain('ldg1', [
        item('ldom_info', { hostid: '0x84f9e8b1', 'failure-policy': 'ignore', 'extended-mapin-space': 'on' }, {
          Address: '00:14:4f:fa:0c:38',
        }),
        cpu(8),
        memory('4G'),
        vdisk1(),
        vnet1(),
        console1(),
        variable('auto-boot?', 'false'),
        variable('boot-device', 'vdisk1'),
      ]),
    ]),
  ]);
}

function listDevices(): LdmDocument {
  return listing(request('list-devices.xml'), [
    listed(
      [],
      [
        section([
          item('cpu', { pid: '16-63' }, { AllocationUnits: '48' }),
          item('mau', { cid: '2-7' }, { AllocationUnits: '6' }),
          item('memory', { pa: '0x208000000', size: '56G' }, { AllocationUnits: '56G' }),
          item('physio_device', { name: 'pci@500' }),
        ]),
      ],
    ),
  ]);
}

function listVariable(): LdmDocument {
  return listing(request('list-variable.xml'), [
    listed([domain('ldg1', [variable('auto-boot?', 'false'), variable('boot-device', 'vdisk1')])]),
  ]);
}

function listSpconfig(): LdmDocument {
  return listing(request('list-spconfig.xml'), [
    listed(
      [],
      [
        section([
          item('spconfig', { spconfig_name: 'factory-default' }),
          item('spconfig', { spconfig_name: 'ldm-config1', spconfig_status: 'current' }),
          item('spconfig', { spconfig_name: 'ldm-config2', spconfig_status: 'next' }),
        ]),
      ],
    ),
  ]);
}

/** The migrate-domain request with the target login removed: a response never echoes it. */
function migrateRequest(): LdmDocument {
  const doc = request('migrate-domain.xml');
  for (const content of firstData(doc).envelope?.contents ?? []) {
    for (const s of content.sections) {
      for (const it of s.items) {
        it.props.delete('username');
        it.props.delete('password');
      }
    }
  }
  return doc;
}

/** Response to a cmd the agent could not make sense of: command-level failure with the reason. */
function commandProblem(doc: LdmDocument, problem: string): LdmDocument {
  doc.commands[0]!.problem = problem;
  return completeResponse(doc);
}

function notWellFormed(): LdmDocument {
  try {
    decodeRequest('<LDM_interface version="1.3">\n  <cmd>\n    <action>list-domain</actoin>\n  </cmd>\n</LDM_interface>\n');
  } catch (err) {
    if (err instanceof XmlError) return overallFailure(describeXmlError(err));
    throw err;
  }
  throw new Error('the broken example request decoded');
}

function responses(): Array<[string, LdmDocument]> {
  const echo = (action: string) => completeResponse(request(`${action}.xml`));
  const failed = (action: string, ...messages: string[]) => objectFailure(request(`${action}.xml`), ...messages);
  return [
    ['list-domain.success', listDomain()],
    ['list-domain.failure', objectFailure(namedLdg9('list-domain'), INVALID_DOMAIN)],
    ['list-bindings.success', listBindings()],
    ['list-bindings.failure', objectFailure(namedLdg9('list-bindings'), INVALID_DOMAIN)],
    ['list-services.success', listServices()],
    ['list-services.failure', objectFailure(namedLdg9('list-services'), INVALID_DOMAIN)],
    ['list-constraints.success', listConstraints()],
    ['list-constraints.failure', objectFailure(namedLdg9('list-constraints'), INVALID_DOMAIN)],
    ['list-devices.success', listDevices()],
    [
      'list-devices.failure',
      commandProblem(requestText('<cmd><action>list-devices</action><options>-q</options><data version="3.0"/></cmd>'), 'Invalid option: -q'),
    ],
    ['list-variable.success', listVariable()],
    [
      'list-variable.failure',
      objectFailure(
        requestText(
          '<cmd><action>list-variable</action><data version="3.0"><Envelope><References/>' +
            '<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"><Section xsi:type="ovf:ResourceAllocationSection_Type">' +
            '<Item><rasd:OtherResourceType>var</rasd:OtherResourceType>' +
            '<gprop:GenericProperty key="name">boot-file</gprop:GenericProperty></Item>' +
            '</Section></Content></Envelope></data></cmd>',
        ),
        'Variable boot-file not found in LDom ldg1',
      ),
    ],
    ['list-spconfig.success', listSpconfig()],
    [
      'list-spconfig.failure',
      objectFailure(
        requestText('<cmd><action>list-spconfig</action><options>-r ldm-config9</options><data version="3.0"/></cmd>'),
        'Autosave configuration ldm-config9 does not exist',
      ),
    ],
    ['add-domain.success', echo('add-domain')],
    ['add-domain.failure', failed('add-domain', 'LDom ldg1 already exists')],
    ['remove-domain.success', echo('remove-domain')],
    ['remove-domain.failure', failed('remove-domain', 'LDom ldg1 must be unbound before it can be removed')],
    ['add-vcpu.success', echo('add-vcpu')],
    ['add-vcpu.failure', failed('add-vcpu', 'Not enough free CPU threads present to meet this request')],
    ['add-memory.success', echo('add-memory')],
    ['add-memory.failure', failed('add-memory', 'Not enough free memory present to meet this request')],
    ['bind-domain.success', echo('bind-domain')],
    ['bind-domain.failure', failed('bind-domain', 'LDom ldg1 is already bound')],
    ['start-domain.success', echo('start-domain')],
    ['start-domain.failure', failed('start-domain', 'LDom ldg1 must be bound before it can be started')],
    ['stop-domain.success', echo('stop-domain')],
    ['stop-domain.failure', failed('stop-domain', 'LDom ldg1 is not active')],
    ['reg-domain-events.success', echo('reg-domain-events')],
    [
      'reg-domain-events.failure',
      failed('reg-domain-events', 'Authorization failed: user guest does not have the solaris.ldoms.read authorization'),
    ],
    ['reg-all-events.success', echo('reg-all-events')],
    [
      'reg-all-events.failure',
      failed('reg-all-events', 'Authorization failed: user guest does not have the solaris.ldoms.read authorization'),
    ],
    ['unreg-all-events.success', echo('unreg-all-events')],
    ['unreg-all-events.failure', failed('unreg-all-events', 'No events are registered on this connection')],
    ['migrate-domain.success', completeResponse(migrateRequest())],
    [
      'migrate-domain.failure',
      objectFailure(
        migrateRequest(),
        'Unable to bind 2G memory region at real address 0x8000000',
        'Domain Migration of LDom ldg1 failed',
      ),
    ],
    ['cancel-operation.success', echo('cancel-operation')],
    ['cancel-operation.failure', failed('cancel-operation', 'LDom ldg1 is not being migrated')],
  ];
}

function severalCommands(): LdmDocument {
  const doc = request('several-commands.xml');
  // add-domain ldg2 and add-vcpu succeed; the third command asks for more memory than is free.
  doc.commands[2]!.data[0]!.response = failure('Not enough free memory present to meet this request');
  return completeResponse(doc);
}

function unknownAction(): LdmDocument {
  // CLI aliases are not actions of the XML interface.
  return completeResponse(requestText('<cmd><action>ls-dom</action><data version="3.0"/></cmd>'));
}

// ---------------------------------------------------------------- events

function event(action: string, contents: Content[], sections: Section[] = []): LdmDocument {
  return {
    root: 'LDM_event',
    version: '1.1',
    commands: [{ action, options: [], arguments: [], data: [{ version: '3.0', envelope: { contents, sections } }] }],
  };
}

function events(): Array<[string, LdmDocument]> {
  const progress = (percent: string, status: string) =>
    event('migrate-domain', [domain('ldg1', [item('ldom_info', { progress: percent, status, source: HOST })])]);
  return [
    ['start-domain', event('start-domain', [{ id: 'ldg1', type: 'VirtualSystem_Type', sections: [] }])],
    ['add-crypto', event('add-crypto', [domain('ldg1', [mau(1)])])],
    ['add-vcpu', event('add-vcpu', [domain('ldg1', [cpu(8)])])],
    ['add-spconfig', event('add-spconfig', [], [section([item('spconfig', { spconfig_name: 'ldm-config1', spconfig_status: 'current' })])])],
    ['migration-progress', progress('45%', 'ongoing')],
    ['migration-done', progress('100%', 'done')],
  ];
}

// ---------------------------------------------------------------- all of them

/** Every generated example, in a stable order. */
export function buildExamples(): Example[] {
  const out: Example[] = [];
  for (const [name, doc] of responses()) out.push({ path: `responses/${name}.xml`, kind: 'response', doc });
  out.push({ path: 'responses/several-commands.xml', kind: 'response', doc: severalCommands() });
  out.push({ path: 'responses/not-well-formed.xml', kind: 'response', doc: notWellFormed() });
  out.push({ path: 'responses/unknown-action.xml', kind: 'response', doc: unknownAction() });
  for (const [name, doc] of events()) out.push({ path: `events/${name}.xml`, kind: 'event', doc });
  return out;
}

/** Paths (under xml-examples/) of the directories whose files are all generated. */
export const GENERATED_DIRS = ['responses', 'events'] as const;

function main(): void {
  for (const ex of buildExamples()) {
    const file = join(EXAMPLES_DIR, ex.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, render(ex.doc));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
