/**
 * schemas/ rejects what it must and accepts both namespace styles: each
 * invalid document is a valid base document with one change, so a rejection
 * can only come from that change. Validation runs in-process through
 * agent/xml/schema.ts (libxml2 as WebAssembly), as `ldm-agent validate` does.
 */
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import type { RootName } from '../agent/xml/document.ts';
import { confinedInputProvider, loadSchemas, SCHEMA_DIR, SCHEMA_FILE, Schemas } from '../agent/xml/schema.ts';
import { showProblems } from './helpers/schema.ts';

const INTERFACE: RootName = 'LDM_interface';
const EVENT: RootName = 'LDM_event';
const schemas = await loadSchemas();

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

const show = showProblems;

/** Replace exactly one occurrence; fails loudly if the base text does not contain it. */
function mutation(base: string, from: string, to: string): { text: string; line: number } {
  const at = base.indexOf(from);
  if (at < 0) throw new Error(`base document has no ${JSON.stringify(from)}`);
  return { text: base.slice(0, at) + to + base.slice(at + from.length), line: base.slice(0, at).split('\n').length };
}
const mutate = (base: string, from: string, to: string) => mutation(base, from, to).text;

for (const style of ['3.x', '1.x'] as const) {
  t.test(`base documents in the ${style} namespace style are valid`, async (t) => {
    for (const [root, text] of [[INTERFACE, responseDoc(style)], [EVENT, eventDoc(style)]] as const) {
      const problems = schemas.validate(root, text);
      t.same(problems, [], `valid against ${SCHEMA_FILE[root]}\n${show(problems)}`);
    }
  });
}

t.test('a document without prefixed content needs no declarations', async (t) => {
  const problems = schemas.validate(
    INTERFACE,
    '<LDM_interface version="1.1"><cmd><action>reg-domain-events</action><data version="3.0"> </data></cmd></LDM_interface>',
  );
  t.same(problems, [], show(problems));
});

t.test('namespaces we do not know are tolerated where no xsi:type needs them', async (t) => {
  const text = mutate(
    responseDoc('3.x').replace(/xmlns:(rasd|gprop|bind)="\.\/schemas\//g, 'xmlns:$1="urn:example:'),
    '<rasd:AllocationUnits>8</rasd:AllocationUnits>',
    '<rasd:AllocationUnits>8</rasd:AllocationUnits><vssd:Anything/>',
  );
  t.notOk(text.includes('"./schemas/GenericProperty"'), 'the gprop URI was changed');
  const problems = schemas.validate(INTERFACE, text);
  t.same(problems, [], show(problems));
});

interface Rejection {
  name: string;
  schema: RootName;
  text: string;
  /** The line of the change: libxml2 must name it. */
  line: number;
  /** Part of libxml2's complaint, to be sure the document fails for the intended reason. */
  expect: RegExp;
}

const rejections: Rejection[] = [
  {
    name: 'LDM_interface without version',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), '<LDM_interface version="1.3"', '<LDM_interface'),
    expect: /attribute 'version' is required/,
  },
  {
    name: 'LDM_event without version',
    schema: EVENT,
    ...mutation(eventDoc('3.x'), '<LDM_event version="1.1"', '<LDM_event'),
    expect: /attribute 'version' is required/,
  },
  {
    name: 'data without version',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), '<data version="3.0">', '<data>'),
    expect: /attribute 'version' is required/,
  },
  {
    name: 'two actions in one cmd',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), '<action>add-vcpu</action>', '<action>add-vcpu</action><action>add-memory</action>'),
    expect: /Element 'action': This element is not expected/,
  },
  {
    name: 'two actions in one event cmd',
    schema: EVENT,
    ...mutation(eventDoc('3.x'), '<action>add-vcpu</action>', '<action>add-vcpu</action><action>add-memory</action>'),
    expect: /Element 'action': This element is not expected/,
  },
  {
    name: 'a status other than success or failure',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), '<status>success</status>', '<status>ok</status>'),
    expect: /enumeration/,
  },
  {
    name: 'a GenericProperty without key (3.x namespace)',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), ' key="wcore"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a GenericProperty without key (1.x namespace)',
    schema: INTERFACE,
    ...mutation(responseDoc('1.x'), ' key="wcore"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a GenericProperty without key inside a bind:Binding',
    schema: INTERFACE,
    ...mutation(responseDoc('1.x'), ' key="vid"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a GenericProperty without key in an event',
    schema: EVENT,
    ...mutation(eventDoc('3.x'), ' key="spconfig_name"', ''),
    expect: /GenericProperty'.*attribute 'key' is required/,
  },
  {
    name: 'a response in an event',
    schema: EVENT,
    ...mutation(eventDoc('3.x'), '</data>', '</data><response><status>success</status></response>'),
    expect: /Element 'response': This element is not expected/,
  },
  {
    name: 'an xsi:type the ovf namespace does not declare',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), 'ovf:VirtualSystem_Type', 'ovf:NoSuch_Type'),
    expect: /does not resolve to a type definition/,
  },
  {
    name: 'a Content type on a Section',
    schema: INTERFACE,
    ...mutation(responseDoc('1.x'), 'ovf:VirtualHardwareSection_Type', 'ovf:VirtualSystem_Type'),
    expect: /not validly derived/,
  },
  {
    name: 'an empty rasd:OtherResourceType',
    schema: INTERFACE,
    ...mutation(
      responseDoc('3.x'),
      '<rasd:OtherResourceType>cpu</rasd:OtherResourceType>',
      '<rasd:OtherResourceType></rasd:OtherResourceType>',
    ),
    expect: /OtherResourceType'.*minLength/,
  },
  {
    name: 'an unexpected element in data',
    schema: INTERFACE,
    ...mutation(responseDoc('3.x'), '<data version="3.0">', '<data version="3.0"><foo/>'),
    expect: /Element 'foo': This element is not expected/,
  },
];

for (const r of rejections) {
  t.test(`rejects ${r.name}`, async (t) => {
    const problems = schemas.validate(r.schema, r.text);
    t.ok(problems.length > 0, `reports a validity error\n${show(problems)}`);
    const intended = problems.find((p) => r.expect.test(p.reason));
    t.ok(intended, `for the intended reason (${r.expect})\n${show(problems)}`);
    t.equal(intended?.line, r.line, `at the line of the change\n${show(problems)}`);
  });
}

t.test('a document that is not namespace-well-formed gets libxml2 parser errors with their lines', async (t) => {
  const problems = schemas.validate(INTERFACE, '<LDM_interface version="1.3">\n<cmd>\n<gprop:GenericProperty key="a"/></cmd>\n</LDM_interface>\n');
  t.same(problems, [{ line: 3, reason: 'Namespace prefix gprop on GenericProperty is not defined' }], show(problems));
  const broken = schemas.validate(EVENT, '<LDM_event version="1.1">\n<cmd>\n</LDM_event>\n');
  t.equal(broken[0]?.line, 3, show(broken));
  t.match(broken[0]?.reason, /tag mismatch: cmd line 2 and LDM_event/, 'not well-formed, said by libxml2');
});

t.test('a document in the other root is refused by each schema', async (t) => {
  const problems = schemas.validate(EVENT, responseDoc('3.x'));
  t.match(show(problems), /No matching global declaration available for the validation root/);
});

t.test('the schema files are read through a provider confined to schemas/', async (t) => {
  const provider = confinedInputProvider(SCHEMA_DIR);
  const read = (fd: number) => {
    const chunks: Buffer[] = [];
    const buf = new Uint8Array(1000); // smaller than the file: several reads
    for (let n; (n = provider.read(fd, buf)) > 0; ) chunks.push(Buffer.from(buf.subarray(0, n)));
    t.ok(provider.close(fd), 'closes');
    return Buffer.concat(chunks);
  };
  t.ok(provider.match('/etc/passwd'), 'claims every name, so no other loader is asked');
  const inside = join(SCHEMA_DIR, 'ovf-envelope.xsd');
  const fd = provider.open(inside);
  t.type(fd, 'number', 'opens a schema file');
  t.same(read(fd!), readFileSync(inside), 'reads it whole');
  const viaUrl = provider.open(pathToFileURL(join(SCHEMA_DIR, 'ns', 'gprop-3x.xsd')).href);
  t.type(viaUrl, 'number', 'a file: URL inside schemas/ too');
  t.same(read(viaUrl!), readFileSync(join(SCHEMA_DIR, 'ns', 'gprop-3x.xsd')));

  const outside = mkdtempSync(join(tmpdir(), 'ldm-outside-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  writeFileSync(join(outside, 'secret.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>');
  const jail = mkdtempSync(join(tmpdir(), 'ldm-jail-'));
  t.teardown(() => rmSync(jail, { recursive: true, force: true }));
  writeFileSync(join(jail, 'ok.xsd'), 'ok');
  symlinkSync(join(outside, 'secret.xsd'), join(jail, 'link.xsd'));
  const confined = confinedInputProvider(jail);
  t.type(confined.open(join(jail, 'ok.xsd')), 'number', 'a file of the folder opens');
  for (const name of [
    join(outside, 'secret.xsd'),
    `${jail}/../${outside.slice(tmpdir().length + 1)}/secret.xsd`,
    join(jail, 'link.xsd'),
    pathToFileURL(join(outside, 'secret.xsd')).href,
    'http://example.com/x.xsd',
    'secret.xsd',
    jail,
    join(jail, 'missing.xsd'),
  ]) {
    t.equal(confined.open(name), undefined, `refuses ${name}`);
  }
});

t.test('a schema that includes a file outside schemas/ does not compile: the reader refuses it', async (t) => {
  const lib = await import('libxml2-wasm');
  const elsewhere = mkdtempSync(join(tmpdir(), 'ldm-elsewhere-'));
  t.teardown(() => rmSync(elsewhere, { recursive: true, force: true }));
  const xs = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"';
  writeFileSync(join(elsewhere, 'part.xsd'), `<xs:schema ${xs}><xs:element name="LDM_event"/></xs:schema>`);
  // The main file itself is read by us (as schemas/ldm-*.xsd are); its include goes through the reader.
  writeFileSync(join(elsewhere, 'main.xsd'), `<xs:schema ${xs}><xs:include schemaLocation="part.xsd"/></xs:schema>`);
  const outside = new Schemas(lib, { LDM_interface: SCHEMA_FILE.LDM_interface, LDM_event: join(elsewhere, 'main.xsd') });
  t.throws(() => outside.compile(EVENT), { code: 'LDM_ERR_FILE', message: /cannot use the schema .*main\.xsd: .*part\.xsd/ });
  t.same(outside.validate(INTERFACE, responseDoc('3.x')), [], 'the other root still works');
  outside.close();
});

t.test('native objects are freed: each validated document at once, the compiled schemas on close', async (t) => {
  const lib = await import('libxml2-wasm');
  lib.diag.configure({ enabled: true });
  t.teardown(() => lib.diag.configure({ enabled: false }));
  // A fresh set, so that its compiled schemas are made while the tracker watches.
  const fresh = new Schemas(lib);
  t.same(fresh.validate(INTERFACE, responseDoc('3.x')), [], 'valid');
  t.ok(fresh.validate(INTERFACE, mutate(responseDoc('3.x'), '<status>success</status>', '<status>ok</status>')).length > 0, 'invalid');
  t.ok(fresh.validate(INTERFACE, '<LDM_interface>').length > 0, 'not well-formed');
  t.same(fresh.validate(EVENT, eventDoc('1.x')), [], 'valid event');
  const live = (report: Record<string, { instances: unknown[] }>) =>
    Object.fromEntries(Object.entries(report).map(([k, v]) => [k, v.instances.length]).filter(([, n]) => n !== 0));
  t.same(live(lib.diag.report()), { XmlDocument: 2, XsdValidator: 2 }, 'only the two compiled schemas (and their documents) are alive');
  fresh.close();
  t.same(live(lib.diag.report()), {}, 'nothing is alive after close');
  t.same(fresh.validate(EVENT, eventDoc('3.x')), [], 'a closed set compiles again on use');
  fresh.close();
});

t.test('loadSchemas gives one shared set', async (t) => {
  t.equal(await loadSchemas(), schemas);
});
