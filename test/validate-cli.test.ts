// `ldm-agent validate`, run as a real child process (the sources, through tsx) on documents written
// like Oracle's guide examples.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { AGENT_ARGS as AGENT } from './helpers/daemon.ts';

const dir = mkdtempSync(join(tmpdir(), 'ldm-validate-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

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

/** The PATH with every folder holding an `xmllint` left out: validation must not need the program. */
const PATH_WITHOUT_XMLLINT = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((d) => d !== '' && !existsSync(join(d, 'xmllint')))
  .join(delimiter);

function run(...files: string[]) {
  return spawnSync(process.execPath, [...AGENT, 'validate', ...files], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATH: PATH_WITHOUT_XMLLINT } });
}

// One process for all the files of a group (a child costs seconds on a loaded machine);
// each file's verdict is still checked on its own.
t.test('accepts documents written in the style of the guides', async (t) => {
  const files = Object.entries(good).map(([name, text]) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  });
  const r = run(...files);
  t.equal(r.status, 0, `all valid: ${r.stderr}`);
  t.equal(r.stdout, files.map((f) => `${f}: valid\n`).join(''), 'each file is said valid, in order');
  t.equal(r.stderr, '', 'no complaint');
});

t.test('rejects each broken document with file:line: reason', async (t) => {
  const files = Object.entries(bad).map(([name, b]) => {
    const file = join(dir, name);
    writeFileSync(file, b.text);
    return { name, file, ...b };
  });
  const r = run(...files.map((f) => f.file));
  t.equal(r.status, 1, 'exit 1');
  t.equal(r.stdout, '', 'none is said valid');
  const lines = r.stderr.split('\n');
  for (const { name, file, line, reason } of files) {
    const first = lines.find((l) => l.startsWith(`${file}:`)) ?? '';
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

t.test('no xmllint on the PATH: the verdicts of libxml2 itself, with their lines', async (t) => {
  const path = PATH_WITHOUT_XMLLINT.split(delimiter);
  t.notOk(path.some((d) => existsSync(join(d, 'xmllint'))), 'no folder of the PATH given to the child holds an xmllint');
  const good = join(dir, 'options-3x.xml');
  const invalid = join(dir, 'several-schema-errors.xml');
  // Each problem only the schema knows: a status outside the enumeration, a GenericProperty
  // without key, an unexpected element. Our decoder accepts all three.
  writeFileSync(
    invalid,
    `<?xml version="1.0"?>
<LDM_interface version="1.3" ${NS3}>
  <cmd>
    <action>list-domain</action>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1">
          <Section xsi:type="ovf:ResourceAllocationSection_Type">
            <Item>
              <rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>
              <gprop:GenericProperty>x</gprop:GenericProperty>
            </Item>
          </Section>
        </Content>
      </Envelope>
      <response><status>done</status></response>
    </data>
  </cmd>
  <unexpected/>
</LDM_interface>
`,
  );
  const r = run(good, invalid);
  t.equal(r.status, 1, 'exit 1: one file fails');
  t.equal(r.stdout, `${good}: valid\n`, 'the valid file is said valid');
  const lines = r.stderr.trimEnd().split('\n');
  const at = (line: number, reason: RegExp) =>
    t.ok(lines.some((l) => l.startsWith(`${invalid}:${line}: `) && reason.test(l)), `line ${line}: ${reason}\n${r.stderr}`);
  at(12, /Element '\{\.\/schemas\/GenericProperty\}GenericProperty': The attribute 'key' is required but missing/);
  at(17, /Element 'status': \[facet 'enumeration'\] The value 'done' is not an element of the set/);
  at(20, /Element 'unexpected': This element is not expected/);
  t.notMatch(r.stderr, /xmllint|ENOENT/, 'nothing about a missing program');
});

t.test('libxml2 is loaded by validate only: --help and the daemon modules do without it', async (t) => {
  // A resolve hook that refuses the package: whoever imports it fails loudly.
  const hooks = join(dir, 'refuse-libxml2-hooks.mjs');
  writeFileSync(
    hooks,
    `export async function resolve(specifier, context, next) {
  if (specifier === 'libxml2-wasm' || specifier.includes('/libxml2-wasm/')) throw new Error('libxml2-wasm was imported');
  return next(specifier, context);
}
`,
  );
  const register = join(dir, 'refuse-libxml2.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${hooks}`).href)});\n`);
  const node = (...args: string[]) => spawnSync(process.execPath, ['--import', register, ...args], { encoding: 'utf8', timeout: 60_000 });

  const help = node(...AGENT, '--help');
  t.equal(help.status, 0, `--help runs: ${help.stderr}`);
  t.match(help.stdout, /usage: ldm-agent/);
  const modules = node('--import', 'tsx', '--input-type=module', '-e', `
    await import(${JSON.stringify(new URL('../agent/daemon.ts', import.meta.url).href)});
    await import(${JSON.stringify(new URL('../agent/cli/validate.ts', import.meta.url).href)});
    console.log('loaded');`);
  t.equal(modules.stdout.trim(), 'loaded', `the daemon and validate modules load without it: ${modules.stderr}`);

  // The hook does bite: validate itself needs the package.
  const file = join(dir, 'option-1x.xml');
  const validate = node(...AGENT, 'validate', file);
  t.not(validate.status, 0, 'validate cannot run without libxml2-wasm');
  t.match(validate.stderr, /libxml2-wasm was imported/);
});
