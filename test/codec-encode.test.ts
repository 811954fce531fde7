// What we emit: namespace-declared, well-formed, escaped, in the client's dialect.
import t from 'tap';
import { SaxesParser } from 'saxes';
import { decodeResponse } from '../agent/xml/decode.ts';
import { failure, item, success, type LdmDocument } from '../agent/xml/document.ts';
import { encodeDocument, escapeAttr, escapeXml, NAMESPACES } from '../agent/xml/encode.ts';

/** Parse with namespace processing on: fails on any undeclared prefix. */
function namespaceWellFormed(text: string): string[] {
  const seen: string[] = [];
  const p = new SaxesParser({ xmlns: true });
  p.on('opentag', (tag) => seen.push(`${tag.uri}|${tag.local}`));
  p.write(text).close();
  return seen;
}

const listing: LdmDocument = {
  root: 'LDM_interface',
  version: '1.3',
  commands: [
    {
      action: 'list-domain',
      options: [],
      arguments: [],
      data: [
        {
          version: '3.0',
          envelope: {
            contents: [
              {
                id: 'ldg<1>&"x"',
                sections: [
                  {
                    items: [
                      { ...item('ldom_info', { state: 'active', flags: '-n----' }, { Address: '00:14:4f:fb:00:01' }), uuid: 'u-1' },
                      { ...item('cpu', {}, { AllocationUnits: '8' }), bindings: [item('cpu', { vid: '0', pid: '8' })] },
                    ],
                  },
                ],
              },
            ],
            sections: [{ type: 'ResourceAllocationSection_Type', items: [item('spconfig', { spconfig_name: 'factory-default' })] }],
          },
          response: success(),
        },
      ],
      response: success(),
    },
  ],
  response: success(),
};

t.test('output declares every prefix it uses', async (t) => {
  const text = encodeDocument(listing, { declaration: true });
  const names = namespaceWellFormed(text);
  t.ok(names.includes(`${NAMESPACES.rasd}|OtherResourceType`));
  t.ok(names.includes(`${NAMESPACES.gprop}|GenericProperty`));
  t.ok(names.includes(`${NAMESPACES.bind}|Binding`));
  t.ok(names.includes('|Envelope'), 'envelope elements are unqualified, as in the guides');
  t.match(text, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<LDM_interface /);
  t.match(text, /<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="ldg&lt;1&gt;&amp;&quot;x&quot;">/);
});

t.test('no XML declaration unless asked (it may not appear inside an XMPP stream)', async (t) => {
  t.match(encodeDocument(listing), /^<LDM_interface /);
  const oneLine = encodeDocument(listing, { indent: false });
  t.notMatch(oneLine, /\n/);
  t.same(decodeResponse(oneLine).commands[0]!.data[0]!.envelope, decodeResponse(encodeDocument(listing)).commands[0]!.data[0]!.envelope);
});

t.test('round trip keeps every value, escaped characters included', async (t) => {
  const back = decodeResponse(encodeDocument(listing));
  const env = back.commands[0]!.data[0]!.envelope!;
  t.equal(env.contents[0]!.id, 'ldg<1>&"x"');
  const [info, cpu] = env.contents[0]!.sections[0]!.items;
  t.equal(info!.uuid, 'u-1');
  t.equal(info!.rasd.get('Address'), '00:14:4f:fb:00:01');
  t.same([...info!.props], [['state', 'active'], ['flags', '-n----']]);
  t.equal(cpu!.bindings[0]!.props.get('pid'), '8');
  t.equal(env.sections[0]!.items[0]!.props.get('spconfig_name'), 'factory-default');
});

t.test('escaping: markup characters and characters XML cannot carry', async (t) => {
  t.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
  t.equal(escapeXml('bell\u0007 nul\u0000'), 'bell\ufffd nul\ufffd');
  t.equal(escapeXml('tab\tlf\ncr\r'), 'tab\tlf\ncr&#13;');
  t.equal(escapeAttr('tab\tlf\ncr\r'), 'tab&#9;lf&#10;cr&#13;');
  t.equal(escapeXml('lone \ud800 surrogate'), 'lone \ufffd surrogate');
  t.equal(escapeXml('pair \ud83d\ude00 ok'), 'pair \ud83d\ude00 ok');
  const doc: LdmDocument = { ...listing, commands: [{ ...listing.commands[0]!, response: failure('bad\u0001 <thing>') }] };
  namespaceWellFormed(encodeDocument(doc));
  t.match(encodeDocument(doc), /<resp_msg>bad\ufffd &lt;thing&gt;<\/resp_msg>/);
});

t.test('options are spelled as the request version expects', async (t) => {
  const withOption = (version: string): LdmDocument => ({
    root: 'LDM_interface',
    version,
    commands: [{ action: 'remove-domain', options: ['-a'], arguments: [], data: [] }],
  });
  t.match(encodeDocument(withOption('1.0')), /<option>-a<\/option>/);
  t.match(encodeDocument(withOption('1.1')), /<option>-a<\/option>/);
  t.match(encodeDocument(withOption('1.3')), /<options>-a<\/options>/);
  t.match(encodeDocument(withOption('1.7')), /<options>-a<\/options>/);
});

t.test('events are rooted at LDM_event and carry no response', async (t) => {
  const ev: LdmDocument = {
    root: 'LDM_event',
    version: '1.1',
    commands: [
      {
        action: 'migrate-domain',
        options: [],
        arguments: [],
        data: [{ version: '3.0', envelope: { contents: [{ id: 'ldg1', sections: [{ items: [item('ldom_info', { progress: '45%', status: 'ongoing', source: 't4-a' })] }] }], sections: [] } }],
      },
    ],
  };
  const text = encodeDocument(ev);
  t.match(text, /^<LDM_event [^>]*version="1.1">/);
  t.notMatch(text, /<response>/);
  namespaceWellFormed(text);
});

t.test('a rasd key that is not an XML name is refused instead of writing broken XML', async (t) => {
  const doc: LdmDocument = {
    root: 'LDM_interface',
    version: '1.3',
    commands: [{ action: 'list-domain', options: [], arguments: [], data: [{ version: '3.0', envelope: { contents: [{ id: 'd', sections: [{ items: [item('cpu', {}, { 'Allocation Units': '4' })] }] }], sections: [] } }] }],
  };
  t.throws(() => encodeDocument(doc), /not an XML name for a rasd element: "Allocation Units"/);
});
