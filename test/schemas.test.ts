/**
 * schemas/ rejects what it must and accepts both namespace styles: each
 * invalid document is a valid base document with one change, so a rejection
 * can only come from that change.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const SCHEMA_DIR = fileURLToPath(new URL('../schemas/', import.meta.url));
const INTERFACE = join(SCHEMA_DIR, 'ldm-interface.xsd');
const EVENT = join(SCHEMA_DIR, 'ldm-event.xsd');

const URIS = {
  '3.x': './schemas/',
  '1.x': '/var/opt/SUNWldom/',
} as const;

function declarations(base: string): string {
  return [
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
    ` xmlns:ovf="${base}envelope"`,
    ` xmlns:rasd="${base}CIM_ResourceAllocationSettingData"`,
    ` xmlns:vssd="${base}CIM_VirtualSystemSettingData"`,
    ` xmlns:gprop="${base}GenericProperty"`,
    ` xmlns:bind="${base}Binding"`,
  ].join('');
}

const envelope = `
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1">
          <Section xsi:type="ovf:VirtualHardwareSection_Type">
            <Item>
              <rasd:OtherResourceType>cpu</rasd:OtherResourceType>
              <rasd:AllocationUnits>8</rasd:AllocationUnits>
              <gprop:GenericProperty key="wcore">1</gprop:GenericProperty>
              <bind:Binding>
                <Item>
                  <rasd:OtherResourceType>cpu</rasd:OtherResourceType>
                  <gprop:GenericProperty key="vid">0</gprop:GenericProperty>
                </Item>
              </bind:Binding>
            </Item>
          </Section>
        </Content>
        <Section xsi:type="ovf:ResourceAllocationSection_type">
          <Item>
            <rasd:OtherResourceType>spconfig</rasd:OtherResourceType>
            <gprop:GenericProperty key="spconfig_name">ldm-config1</gprop:GenericProperty>
          </Item>
        </Section>
      </Envelope>`;

/** A response to add-vcpu, in the given namespace style, valid as it stands. */
const responseDoc = (style: keyof typeof URIS) => `<?xml version="1.0"?>
<LDM_interface version="1.3"${declarations(URIS[style])}>
  <cmd>
    <action>add-vcpu</action>
    <options>-f</options>
    <data version="3.0">${envelope}
      <response><status>success</status></response>
    </data>
    <response><status>success</status></response>
  </cmd>
  <response><status>success</status></response>
</LDM_interface>
`;

const eventDoc = (style: keyof typeof URIS) => `<?xml version="1.0"?>
<LDM_event version="1.1"${declarations(URIS[style])}>
  <cmd>
    <action>add-vcpu</action>
    <data version="3.0">${envelope}
    </data>
  </cmd>
</LDM_event>
`;

const dir = mkdtempSync(join(tmpdir(), 'ldm-schemas-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function xmllint(schema: string, text: string) {
  const file = join(dir, `doc-${++counter}.xml`);
  writeFileSync(file, text);
  const run = spawnSync('xmllint', ['--noout', '--nonet', '--schema', schema, file], { encoding: 'utf8' });
  return { status: run.status, stderr: `${run.error ?? ''}${run.stderr}` };
}

/** Replace exactly one occurrence; fails loudly if the base text does not contain it. */
function mutate(base: string, from: string, to: string): string {
  const at = base.indexOf(from);
  if (at < 0) throw new Error(`base document has no ${JSON.stringify(from)}`);
  return base.slice(0, at) + to + base.slice(at + from.length);
}

for (const style of ['3.x', '1.x'] as const) {
  t.test(`base documents in the ${style} namespace style are valid`, async (t) => {
    for (const [schema, text] of [[INTERFACE, responseDoc(style)], [EVENT, eventDoc(style)]] as const) {
      const run = xmllint(schema, text);
      t.equal(run.status, 0, `valid against ${schema}\n${run.stderr}`);
    }
  });
}

t.test('a document without prefixed content needs no declarations', async (t) => {
  const run = xmllint(
    INTERFACE,
    '<LDM_interface version="1.1"><cmd><action>reg-domain-events</action><data version="3.0"> </data></cmd></LDM_interface>',
  );
  t.equal(run.status, 0, run.stderr);
});

t.test('namespaces we do not know are tolerated where no xsi:type needs them', async (t) => {
  const text = mutate(
    responseDoc('3.x').replace(/xmlns:(rasd|gprop|bind)="\.\/schemas\//g, 'xmlns:$1="urn:example:'),
    '<rasd:AllocationUnits>8</rasd:AllocationUnits>',
    '<rasd:AllocationUnits>8</rasd:AllocationUnits><vssd:Anything/>',
  );
  t.notOk(text.includes('"./schemas/GenericProperty"'), 'the gprop URI was changed');
  const run = xmllint(INTERFACE, text);
  t.equal(run.status, 0, run.stderr);
});

interface Rejection {
  name: string;
  schema: string;
  text: string;
  /** Part of xmllint's complaint, to be sure the document fails for the intended reason. */
  expect: RegExp;
}

const rejections: Rejection[] = [
  {
    name: 'LDM_interface without version',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), '<LDM_interface version="1.3"', '<LDM_interface'),
    expect: /attribute 'version' is required/,
  },
  {
    name: 'LDM_event without version',
    schema: EVENT,
    text: mutate(eventDoc('3.x'), '<LDM_event version="1.1"', '<LDM_event'),
    expect: /attribute 'version' is required/,
  },
  {
    name: 'data without version',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), '<data version="3.0">', '<data>'),
    expect: /attribute 'version' is required/,
  },
  {
    name: 'two actions in one cmd',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), '<action>add-vcpu</action>', '<action>add-vcpu</action><action>add-memory</action>'),
    expect: /Element 'action': This element is not expected/,
  },
  {
    name: 'two actions in one event cmd',
    schema: EVENT,
    text: mutate(eventDoc('3.x'), '<action>add-vcpu</action>', '<action>add-vcpu</action><action>add-memory</action>'),
    expect: /Element 'action': This element is not expected/,
  },
  {
    name: 'a status other than success or failure',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), '<status>success</status>', '<status>ok</status>'),
    expect: /enumeration/,
  },
  {
    name: 'a GenericProperty without key (3.x namespace)',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), ' key="wcore"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a GenericProperty without key (1.x namespace)',
    schema: INTERFACE,
    text: mutate(responseDoc('1.x'), ' key="wcore"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a GenericProperty without key inside a bind:Binding',
    schema: INTERFACE,
    text: mutate(responseDoc('1.x'), ' key="vid"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a GenericProperty without key in an event',
    schema: EVENT,
    text: mutate(eventDoc('3.x'), ' key="spconfig_name"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a response in an event',
    schema: EVENT,
    text: mutate(eventDoc('3.x'), '</data>', '</data><response><status>success</status></response>'),
    expect: /Element 'response': This element is not expected/,
  },
  {
    name: 'an xsi:type the ovf namespace does not declare',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), 'ovf:VirtualSystem_Type', 'ovf:NoSuch_Type'),
    expect: /does not resolve to a type definition/,
  },
  {
    name: 'a Content type on a Section',
    schema: INTERFACE,
    text: mutate(responseDoc('1.x'), 'ovf:VirtualHardwareSection_Type', 'ovf:VirtualSystem_Type'),
    expect: /not validly derived/,
  },
  {
    name: 'an empty rasd:OtherResourceType',
    schema: INTERFACE,
    text: mutate(
      responseDoc('3.x'),
      '<rasd:OtherResourceType>cpu</rasd:OtherResourceType>',
      '<rasd:OtherResourceType></rasd:OtherResourceType>',
    ),
    expect: /OtherResourceType'.*minLength/,
  },
  {
    name: 'an unexpected element in data',
    schema: INTERFACE,
    text: mutate(responseDoc('3.x'), '<data version="3.0">', '<data version="3.0"><foo/>'),
    expect: /Element 'foo': This element is not expected/,
  },
];

for (const r of rejections) {
  t.test(`rejects ${r.name}`, async (t) => {
    const run = xmllint(r.schema, r.text);
    t.equal(run.status, 3, `xmllint reports a validity error (status 3)\n${run.stderr}`);
    t.match(run.stderr, r.expect, 'for the intended reason');
  });
}
