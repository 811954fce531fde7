// Decoding requests as clients in the wild write them (protocol.md section 2).
import t from 'tap';
import { decodeEvent, decodeRequest, decodeResponse } from '../agent/xml/decode.ts';
import { optionTokens } from '../agent/xml/document.ts';

t.test('3.x request: options, arguments, Content with ovf:id, rasd and gprop values', async (t) => {
  const doc = decodeRequest(`<LDM_interface version="1.3" xmlns:ovf="./schemas/envelope" xmlns:rasd="./schemas/CIM_ResourceAllocationSettingData" xmlns:gprop="./schemas/GenericProperty" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <cmd>
    <action>add-vcpu</action>
    <options>-f</options>
    <arguments>extra</arguments>
    <data version="3.0">
      <Envelope>
        <References/>
        <Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1">
          <Section xsi:type="ovf:VirtualHardwareSection_Type">
            <Item>
              <rasd:OtherResourceType>cpu</rasd:OtherResourceType>
              <rasd:AllocationUnits> 8 </rasd:AllocationUnits>
              <gprop:GenericProperty key="wcore">1</gprop:GenericProperty>
            </Item>
          </Section>
        </Content>
      </Envelope>
    </data>
  </cmd>
</LDM_interface>`);
  t.equal(doc.version, '1.3');
  const cmd = doc.commands[0]!;
  t.equal(cmd.action, 'add-vcpu');
  t.same(cmd.options, ['-f']);
  t.same(cmd.arguments, ['extra']);
  t.equal(cmd.problem, undefined);
  const content = cmd.data[0]!.envelope!.contents[0]!;
  t.equal(content.id, 'ldg1');
  t.equal(content.type, 'VirtualSystem_Type');
  const section = content.sections[0]!;
  t.equal(section.type, 'VirtualHardwareSection_Type');
  const it = section.items[0]!;
  t.equal(it.type, 'cpu');
  t.equal(it.rasd.get('AllocationUnits'), '8', 'values are trimmed');
  t.equal(it.props.get('wcore'), '1');
});

t.test('1.x request: <option>, plain id, undeclared prefixes, lower-case _type', async (t) => {
  const doc = decodeRequest(`<?xml version="1.0"?>
<LDM_interface version="1.0">
  <cmd>
    <action>remove-domain</action>
    <option>-a</option>
    <data version="3.0">
      <Envelope><References/>
        <Content xsi:type="ovf:VirtualSystem_Type" id="ldg2">
          <Section xsi:type="ovf:ResourceAllocationSection_type">
            <Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType></Item>
          </Section>
        </Content>
      </Envelope>
    </data>
  </cmd>
</LDM_interface>`);
  const cmd = doc.commands[0]!;
  t.same(optionTokens(cmd), ['-a']);
  t.equal(cmd.data[0]!.envelope!.contents[0]!.id, 'ldg2');
  t.equal(cmd.data[0]!.envelope!.contents[0]!.sections[0]!.type, 'ResourceAllocationSection_type');
});

t.test('element names match case-insensitively and whatever their prefix', async (t) => {
  const doc = decodeRequest(`<ldm:LDM_Interface version="1.3"><ldm:CMD><Action>list-domain</Action><Data version="3.0"><x:envelope><CONTENT ID="d1"/></x:envelope></Data></ldm:CMD></ldm:LDM_Interface>`);
  t.equal(doc.commands[0]!.action, 'list-domain');
  t.equal(doc.commands[0]!.data[0]!.envelope!.contents[0]!.id, 'd1');
});

t.test('migrate-domain with two Contents: source, then target name with login keys', async (t) => {
  const doc = decodeRequest(`<LDM_interface version="1.3">
<cmd><action>migrate-domain</action><options>-n</options><data version="3.0"><Envelope><References/>
<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1"/>
<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg1-new"><Section xsi:type="ovf:ResourceAllocationSection_Type"><Item>
<rasd:OtherResourceType>ldom_info</rasd:OtherResourceType>
<gprop:GenericProperty key="target">t4-b:6482</gprop:GenericProperty>
<gprop:GenericProperty key="username">cm9vdA==</gprop:GenericProperty>
<gprop:GenericProperty key="password">c2VjcmV0</gprop:GenericProperty>
</Item></Section></Content></Envelope></data></cmd></LDM_interface>`);
  const env = doc.commands[0]!.data[0]!.envelope!;
  t.same(env.contents.map((c) => c.id), ['ldg1', 'ldg1-new']);
  t.equal(env.contents[0]!.sections.length, 0);
  const info = env.contents[1]!.sections[0]!.items[0]!;
  t.equal(info.props.get('target'), 't4-b:6482');
  t.equal(Buffer.from(info.props.get('password')!, 'base64').toString(), 'secret');
});

t.test('libldom event registration: no namespaces, whitespace-only data', async (t) => {
  const doc = decodeRequest(
    '<LDM_interface version="1.1"><cmd><action>reg-domain-events</action><data version="3.0"> </data></cmd></LDM_interface>',
  );
  t.equal(doc.commands[0]!.action, 'reg-domain-events');
  t.equal(doc.commands[0]!.data.length, 1);
  t.equal(doc.commands[0]!.data[0]!.envelope, undefined);
  t.equal(doc.commands[0]!.data[0]!.problem, undefined);
});

t.test('Sections straight under Envelope; a Content without its Envelope is tolerated', async (t) => {
  const doc = decodeRequest(`<LDM_interface version="1.3"><cmd><action>add-vdiskserver</action><data version="3.0"><Envelope><Section><Item><rasd:OtherResourceType>vds</rasd:OtherResourceType><gprop:GenericProperty key="service_name">primary-vds0</gprop:GenericProperty></Item></Section></Envelope></data>
<data version="3.0"><Content id="ldg3"/></data></cmd></LDM_interface>`);
  const [d1, d2] = doc.commands[0]!.data;
  t.equal(d1!.envelope!.sections[0]!.items[0]!.props.get('service_name'), 'primary-vds0');
  t.equal(d2!.envelope!.contents[0]!.id, 'ldg3');
});

t.test('responses: three levels, 3.6 warning, bindings and uuid', async (t) => {
  const doc = decodeResponse(`<LDM_interface version="1.3"><cmd><action>list-bindings</action><data version="3.0"><Envelope>
<Content ovf:id="primary"><Section><Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType><uuid>4a1b</uuid></Item>
<Item><rasd:OtherResourceType>cpu</rasd:OtherResourceType><rasd:AllocationUnits>2</rasd:AllocationUnits><bind:Binding><Item><rasd:OtherResourceType>cpu</rasd:OtherResourceType><gprop:GenericProperty key="vid">0</gprop:GenericProperty><gprop:GenericProperty key="pid">0</gprop:GenericProperty></Item><Item><rasd:OtherResourceType>cpu</rasd:OtherResourceType><gprop:GenericProperty key="vid">1</gprop:GenericProperty><gprop:GenericProperty key="pid">1</gprop:GenericProperty></Item></bind:Binding></Item></Section></Content>
</Envelope><response><status>success</status></response><response><status>success</status><resp_msg>careful</resp_msg></response></data>
<response><status>success</status></response></cmd><response><status>success</status></response></LDM_interface>`);
  const d = doc.commands[0]!.data[0]!;
  t.same(d.response, { status: 'success', messages: [] });
  t.same(d.warning, { status: 'success', messages: ['careful'] });
  t.equal(doc.response!.status, 'success');
  const items = d.envelope!.contents[0]!.sections[0]!.items;
  t.equal(items[0]!.uuid, '4a1b');
  t.same(items[1]!.bindings.map((b) => b.props.get('pid')), ['0', '1']);
});

t.test('events: LDM_event root; actions are not checked against the request vocabulary', async (t) => {
  const doc = decodeEvent(`<LDM_event version='1.1'><cmd><action>add-crypto</action><data version='3.0'><Envelope><Content ovf:id='ldg1'/></Envelope></data></cmd></LDM_event>`);
  t.equal(doc.root, 'LDM_event');
  t.equal(doc.commands[0]!.action, 'add-crypto');
  t.equal(doc.commands[0]!.problem, undefined);
});

t.test('CDATA and character references are text', async (t) => {
  const doc = decodeRequest(`<LDM_interface version="1.3"><cmd><action>add-variable</action><data version="3.0"><Envelope><Content id="d"><Section><Item><rasd:OtherResourceType>var</rasd:OtherResourceType><gprop:GenericProperty key="name">boot-file</gprop:GenericProperty><gprop:GenericProperty key="value"><![CDATA[-k <a&b>]]>&#x41;&amp;</gprop:GenericProperty></Item></Section></Content></Envelope></data></cmd></LDM_interface>`);
  t.equal(doc.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props.get('value'), '-k <a&b>A&');
});

t.test('a GenericProperty key named __proto__ is data, not a prototype', async (t) => {
  const doc = decodeRequest(`<LDM_interface version="1.3"><cmd><action>add-variable</action><data version="3.0"><Envelope><Content id="d"><Section><Item><rasd:OtherResourceType>var</rasd:OtherResourceType><gprop:GenericProperty key="__proto__">x</gprop:GenericProperty></Item></Section></Content></Envelope></data></cmd></LDM_interface>`);
  const props = doc.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props;
  t.equal(props.get('__proto__'), 'x');
  t.equal(({} as Record<string, unknown>)['x'], undefined);
});

t.test('Item children: rasd values by canonical name, unknown decorations dropped', async (t) => {
  const doc = decodeRequest(`<LDM_interface version="1.3"><cmd><action>add-vcpu</action><data version="3.0"><Envelope><Content id="d"><Section><Item>
<rasd:OtherResourceType>cpu</rasd:OtherResourceType><RASD:allocationunits>4</RASD:allocationunits><rasd:FooBar>x</rasd:FooBar><vssd:Caption2>y</vssd:Caption2><other>z</other>
</Item></Section></Content></Envelope></data></cmd></LDM_interface>`);
  const it = doc.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!;
  t.same([...it.rasd], [['AllocationUnits', '4'], ['FooBar', 'x']]);
});

t.test('values are trimmed of XML white space only: U+00A0, U+FEFF and U+2028 are content', async (t) => {
  const value = '\u00a0nbsp\u2028 and bom\ufeff';
  const doc = decodeRequest(`<LDM_interface version=" 1.3\t"><cmd><action>\n add-variable\r\n</action><data version="3.0"><Envelope><Content id=" d "><Section><Item><rasd:OtherResourceType>var</rasd:OtherResourceType><gprop:GenericProperty key="name">x</gprop:GenericProperty><gprop:GenericProperty key="value"> \t${value}\n </gprop:GenericProperty></Item></Section></Content></Envelope></data></cmd></LDM_interface>`);
  t.equal(doc.version, '1.3');
  t.equal(doc.commands[0]!.action, 'add-variable');
  t.equal(doc.commands[0]!.data[0]!.envelope!.contents[0]!.id, 'd');
  t.equal(doc.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props.get('value'), value);
});
