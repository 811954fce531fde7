// `ldm-agent validate`, run as a real child process on documents written like Oracle's guide examples.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = new URL('../bin/ldm-agent.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'ldm-validate-'));

const NS1 = `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ovf="/var/opt/SUNWldom/envelope" xmlns:rasd="/var/opt/SUNWldom/CIM_ResourceAllocationSettingData" xmlns:vssd="/var/opt/SUNWldom/CIM_VirtualSystemSettingData" xmlns:gprop="/var/opt/SUNWldom/GenericProperty" xmlns:bind="/var/opt/SUNWldom/Binding"`;
const NS3 = `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ovf="./schemas/envelope" xmlns:rasd="./schemas/CIM_ResourceAllocationSettingData" xmlns:vssd="./schemas/CIM_VirtualSystemSettingData" xmlns:gprop="./schemas/GenericProperty" xmlns:bind="./schemas/Binding" xsi:noNamespaceSchemaLocation="./schemas/combined-v3.xsd"`;

const good: Record<string, string> = {
  'option-1x.xml': `<?xml version="1.0"?>
<LDM_interface version="1.0" ${NS1}>
  <cmd>
    <action>remove-domain</action>
    <option>-a</option>
    <data version="3.0"/>
  </cmd>
</LDM_interface>
`,
  'options-3x.xml': `<?xml version="1.0"?>
<LDM_interface version="1.3" ${NS3}>
  <cmd>
    <action>cancel-operation</action>
    <options>migration</options>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"/>
      </Envelope>
    </data>
  </cmd>
</LDM_interface>
`,
  'migrate-two-contents.xml': `<?xml version="1.0"?>
<LDM_interface version="1.3" ${NS3}>
  <cmd>
    <action>migrate-domain</action>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1">
          <Section xsi:type="ovf:ResourceAllocationSection_Type">
            <Item>
              <rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>
              <gprop:GenericProperty key="target">t4-b</gprop:GenericProperty>
              <gprop:GenericProperty key="username">cm9vdA==</gprop:GenericProperty>
              <gprop:GenericProperty key="password">c2VjcmV0</gprop:GenericProperty>
            </Item>
          </Section>
        </Content>
      </Envelope>
    </data>
  </cmd>
</LDM_interface>
`,
  'reg-events-empty-data.xml': `<LDM_interface version="1.3">
  <cmd>
    <action>reg-domain-events</action>
    <data version="3.0"/>
  </cmd>
</LDM_interface>
`,
  'response-several-commands.xml': `<?xml version="1.0"?>
<LDM_interface version="1.3" ${NS3}>
  <cmd>
    <action>add-vcpu</action>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1">
          <Section xsi:type="ovf:VirtualHardwareSection_Type">
            <Item>
              <rasd:OtherResourceType>cpu</rasd:OtherResourceType>
              <rasd:AllocationUnits>8</rasd:AllocationUnits>
            </Item>
          </Section>
        </Content>
      </Envelope>
      <response><status>success</status></response>
    </data>
    <response><status>success</status></response>
  </cmd>
  <cmd>
    <action>bind-domain</action>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"/>
      </Envelope>
      <response>
        <status>failure</status>
        <resp_msg>Not enough free memory present to meet this request</resp_msg>
      </response>
    </data>
    <response><status>failure</status></response>
  </cmd>
  <response><status>failure</status></response>
</LDM_interface>
`,
  'migration-progress-event.xml': `<?xml version="1.0"?>
<LDM_event version="1.1" ${NS3}>
  <cmd>
    <action>migrate-domain</action>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1">
          <Section xsi:type="ovf:ResourceAllocationSection_type">
            <Item>
              <rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>
              <gprop:GenericProperty key="progress">45%</gprop:GenericProperty>
              <gprop:GenericProperty key="status">ongoing</gprop:GenericProperty>
              <gprop:GenericProperty key="source">t4-a</gprop:GenericProperty>
            </Item>
          </Section>
        </Content>
      </Envelope>
    </data>
  </cmd>
</LDM_event>
`,
};

const bad: Record<string, { text: string; line: number; reason: RegExp }> = {
  'not-well-formed.xml': {
    text: `<LDM_interface version="1.3">\n  <cmd>\n    <action>list-domain</actoin>\n  </cmd>\n</LDM_interface>\n`,
    line: 3,
    reason: /not well-formed|unexpected close tag|mismatch/i,
  },
  'missing-version.xml': {
    text: `<?xml version="1.0"?>\n<LDM_interface>\n  <cmd>\n    <action>list-domain</action>\n  </cmd>\n</LDM_interface>\n`,
    line: 2,
    reason: /version/,
  },
  'two-actions.xml': {
    text: `<LDM_interface version="1.3">\n  <cmd>\n    <action>list-domain</action>\n    <action>list-bindings</action>\n  </cmd>\n</LDM_interface>\n`,
    line: 2,
    reason: /2 <action> elements/,
  },
  'doctype.xml': {
    text: `<?xml version="1.0"?>\n<!DOCTYPE LDM_interface>\n<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>\n`,
    line: 2,
    reason: /DOCTYPE/,
  },
};

function run(...files: string[]) {
  return spawnSync(process.execPath, [BIN, 'validate', ...files], { encoding: 'utf8' });
}

t.test('accepts documents written in the style of the guides', async (t) => {
  for (const [name, text] of Object.entries(good)) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = run(file);
    t.equal(r.status, 0, `${name} is valid: ${r.stderr}`);
    t.equal(r.stdout, `${file}: valid\n`);
  }
});

t.test('rejects each broken document with file:line: reason', async (t) => {
  for (const [name, { text, line, reason }] of Object.entries(bad)) {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = run(file);
    t.equal(r.status, 1, `${name} fails`);
    const first = r.stderr.split('\n')[0]!;
    t.match(first, new RegExp(`^${file.replace(/[.]/g, '\\.')}:${line}: `), `${name}: names line ${line}: ${r.stderr}`);
    t.match(first, reason, `${name}: says why`);
  }
});

t.test('several files: exit 1 if any fails, every file reported', async (t) => {
  const ok = join(dir, 'option-1x.xml');
  const ko = join(dir, 'two-actions.xml');
  const r = run(ok, ko);
  t.equal(r.status, 1);
  t.match(r.stdout, `${ok}: valid`);
  t.match(r.stderr, `${ko}:2:`);
});

t.test('the schema catches what only a schema knows: a bad status value', async (t) => {
  const file = join(dir, 'bad-status.xml');
  writeFileSync(file, `<LDM_interface version="1.3">\n<cmd><action>list-domain</action></cmd>\n<response>\n<status>maybe</status>\n</response>\n</LDM_interface>\n`);
  const r = run(file);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:4: .*maybe`));
});

t.test('missing file and no arguments', async (t) => {
  const r = run(join(dir, 'nope.xml'));
  t.equal(r.status, 1);
  t.match(r.stderr, /nope\.xml:0: cannot read file: ENOENT/);
  const u = run();
  t.equal(u.status, 2);
  t.match(u.stderr, /usage: ldm-agent validate FILE/);
});
