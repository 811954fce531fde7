// One test per class of malformed input: each becomes the right level of failure with a precise text.
import t from 'tap';
import { ErrorCodes, XmlError } from '../agent/errors.ts';
import { decodeRequest, decodeText } from '../agent/xml/decode.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { xmlLimits } from '../agent/xml/limits.ts';
import { completeResponse, describeXmlError, overallFailure } from '../agent/xml/respond.ts';

const wrap = (cmds: string, version = '1.3') => `<LDM_interface version="${version}">${cmds}</LDM_interface>`;

/** The XmlError `fn` throws; anything else (or nothing) fails the test. */
function xmlError(_t: unknown, fn: () => unknown): XmlError {
  try {
    fn();
  } catch (err) {
    if (err instanceof XmlError) return err;
    throw new Error(`expected an XmlError, got ${String(err)}`);
  }
  throw new Error('expected an XmlError, nothing was thrown');
}

t.test('not well-formed: the parser message and the line', async (t) => {
  const err = xmlError(t, () => decodeRequest('<LDM_interface version="1.3">\n<cmd>\n<action>list-domain</cmd>\n</LDM_interface>'));
  t.equal(err.code, ErrorCodes.XML_NOT_WELL_FORMED);
  t.equal(err.line, 3);
  t.match(err.message, /unexpected close tag/);
  t.match(describeXmlError(err), /^XML document is not well-formed \(line 3\): unexpected close tag/);
});

t.test('not XML at all, empty input, text after the root', async (t) => {
  t.equal(xmlError(t, () => decodeRequest('hello')).code, ErrorCodes.XML_NOT_WELL_FORMED);
  t.equal(xmlError(t, () => decodeRequest('')).code, ErrorCodes.XML_NOT_WELL_FORMED);
  t.equal(xmlError(t, () => decodeRequest(wrap('<cmd><action>list-domain</action></cmd>') + '<x/>')).code, ErrorCodes.XML_NOT_WELL_FORMED);
});

t.test('DOCTYPE is refused, with or without entity declarations', async (t) => {
  const plain = xmlError(t, () => decodeRequest('<!DOCTYPE LDM_interface>\n' + wrap('<cmd><action>list-domain</action></cmd>')));
  t.equal(plain.code, ErrorCodes.XML_DOCTYPE);
  t.equal(plain.line, 1);
  const bomb = `<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n<LDM_interface version="1.3"><cmd><action>&lol2;</action></cmd></LDM_interface>`;
  const err = xmlError(t, () => decodeRequest(bomb));
  t.equal(err.code, ErrorCodes.XML_DOCTYPE);
  t.match(err.message, /DOCTYPE/);
});

t.test('undefined entity references are not expanded', async (t) => {
  const err = xmlError(t, () => decodeRequest(wrap('<cmd><action>&xxe;</action></cmd>')));
  t.equal(err.code, ErrorCodes.XML_NOT_WELL_FORMED);
  t.match(err.message, /undefined entity/);
});

t.test('size limit: default 4 MiB, configurable; the message names the limit', async (t) => {
  const big = wrap(`<cmd><action>list-domain</action><!--${'x'.repeat(4 * 1024 * 1024)}--></cmd>`);
  const err = xmlError(t, () => decodeRequest(big));
  t.equal(err.code, ErrorCodes.XML_LIMIT);
  t.match(err.message, /size limit of 4194304 bytes/);
  const small = xmlError(t, () => decodeRequest(wrap('<cmd><action>list-domain</action></cmd>'), xmlLimits({ maxBytes: 20 })));
  t.match(small.message, /size limit of 20 bytes/);
  // Multi-byte characters count as bytes, not UTF-16 units.
  const euro = wrap(`<cmd><action>list-domain</action><!--${'€'.repeat(100)}--></cmd>`);
  t.ok(decodeRequest(euro, xmlLimits({ maxBytes: 400 })));
  t.equal(xmlError(t, () => decodeRequest(euro, xmlLimits({ maxBytes: 300 }))).code, ErrorCodes.XML_LIMIT);
});

t.test('depth limit: 64 levels pass, 65 do not', async (t) => {
  const nest = (n: number) => wrap(`<cmd><action>list-domain</action>${'<x>'.repeat(n - 2)}${'</x>'.repeat(n - 2)}</cmd>`);
  t.ok(decodeRequest(nest(64)), 'depth 64 accepted');
  const err = xmlError(t, () => decodeRequest(nest(65)));
  t.equal(err.code, ErrorCodes.XML_LIMIT);
  t.match(err.message, /nesting depth limit of 64/);
  const deep = xmlError(t, () => decodeRequest(nest(10_000)));
  t.equal(deep.code, ErrorCodes.XML_LIMIT);
});

t.test('element count limit', async (t) => {
  const many = wrap(`<cmd><action>list-domain</action>${'<x/>'.repeat(1000)}</cmd>`);
  t.ok(decodeRequest(many, xmlLimits({ maxElements: 1003 })));
  const err = xmlError(t, () => decodeRequest(many, xmlLimits({ maxElements: 1002 })));
  t.equal(err.code, ErrorCodes.XML_LIMIT);
  t.match(err.message, /element count limit of 1002/);
});

t.test('document-level structure: root, version, commands', async (t) => {
  const root = xmlError(t, () => decodeRequest('<LDM_event version="1.1"><cmd><action>x</action></cmd></LDM_event>'));
  t.equal(root.code, ErrorCodes.XML_STRUCTURE);
  t.match(root.message, /root element is <LDM_event>, expected <LDM_interface>/);
  const version = xmlError(t, () => decodeRequest('\n<LDM_interface><cmd><action>list-domain</action></cmd></LDM_interface>'));
  t.equal(version.message, '<LDM_interface> has no version attribute');
  t.equal(version.line, 2);
  const none = xmlError(t, () => decodeRequest('<LDM_interface version="1.3"/>'));
  t.match(none.message, /contains no <cmd>/);
  t.equal(xmlError(t, () => decodeText('<LDM_event><cmd><action>x</action></cmd></LDM_event>', 'event')).code, ErrorCodes.XML_STRUCTURE);
});

t.test('command-level problems: no action, two actions, empty action, unknown action, CLI alias', async (t) => {
  const doc = decodeRequest(
    wrap(`<cmd><data version="3.0"/></cmd>
<cmd><action>list-domain</action><action>list-bindings</action></cmd>
<cmd><action> </action></cmd>
<cmd><action>frobnicate-domain</action></cmd>
<cmd><action>ls-dom</action></cmd>
<cmd><action>list-domain</action></cmd>`),
  );
  t.same(
    doc.commands.map((c) => c.problem),
    [
      'cmd has no <action> element',
      'cmd has 2 <action> elements, exactly one is allowed',
      'cmd has an empty <action> element',
      'Unknown action: frobnicate-domain',
      'Unknown action: ls-dom',
      undefined,
    ],
  );
  t.same(doc.commands.map((c) => c.line), [1, 2, 3, 4, 5, 6]);
});

t.test('object-level problems: nameless Content, typeless Item, keyless property, stray element', async (t) => {
  const item = (body: string) => `<Envelope><Content id="ldg1"><Section><Item>${body}</Item></Section></Content></Envelope>`;
  const doc = decodeRequest(
    wrap(`<cmd><action>add-vcpu</action>
<data version="3.0"><Envelope><Content xsi:type="ovf:VirtualSystem_Type"/></Envelope></data>
<data version="3.0">${item('<rasd:AllocationUnits>4</rasd:AllocationUnits>')}</data>
<data version="3.0">${item('<rasd:OtherResourceType>cpu</rasd:OtherResourceType><gprop:GenericProperty>1</gprop:GenericProperty>')}</data>
<data version="3.0"><Foo/></data>
<data version="3.0"><Envelope/><Envelope/></data>
<data version="3.0">${item('<rasd:OtherResourceType>cpu</rasd:OtherResourceType>')}</data>
</cmd>`),
  );
  const cmd = doc.commands[0]!;
  t.equal(cmd.problem, undefined, 'the command itself is fine');
  t.same(
    cmd.data.map((d) => d.problem),
    [
      'Content element has no id or ovf:id attribute naming the domain',
      'Item has no rasd:OtherResourceType',
      'GenericProperty has no key attribute',
      'unexpected <Foo> in <data>, expected <Envelope>',
      'data holds more than one <Envelope>',
      undefined,
    ],
  );
  t.same(cmd.data.map((d) => d.line), [2, 3, 4, 5, 6, 7]);
});

t.test('completeResponse answers each problem at its level and the rest succeeds', async (t) => {
  const doc = decodeRequest(
    wrap(`<cmd><action>list-domain</action><data version="3.0"/></cmd>
<cmd><action>nope</action></cmd>
<cmd><action>add-vcpu</action><data version="3.0"><Envelope><Content/></Envelope></data><data version="3.0"><Envelope><Content id="a"/></Envelope></data></cmd>`),
  );
  const r = completeResponse(doc);
  t.same(r.commands[0]!.response, { status: 'success', messages: [] });
  t.same(r.commands[1]!.response, { status: 'failure', messages: ['Unknown action: nope'] });
  t.same(r.commands[2]!.data.map((d) => d.response?.status), ['failure', 'success']);
  t.same(r.commands[2]!.data[0]!.response!.messages, ['Content element has no id or ovf:id attribute naming the domain']);
  t.same(r.commands[2]!.response, { status: 'failure', messages: [] }, 'command fails without a message of its own');
  t.same(r.response, { status: 'failure', messages: [] }, 'overall fails without a message: the document was fine');
  const text = encodeDocument(r);
  t.match(text, /<resp_msg>Unknown action: nope<\/resp_msg>/);
});

t.test('overallFailure: a response with only the overall level, echoing the version', async (t) => {
  const err = xmlError(t, () => decodeRequest('<LDM_interface version="1.0"><cmd>'));
  const r = overallFailure(describeXmlError(err), '1.0');
  const text = encodeDocument(r);
  t.match(text, /version="1.0"/);
  t.notMatch(text, /<cmd>/);
  t.match(text, /<resp_msg>XML document is not well-formed \(line 1\): [^<]+<\/resp_msg>/);
  const back = decodeText(text, 'response');
  t.equal(back.commands.length, 0);
  t.equal(back.response?.status, 'failure');
});

t.test('a response never echoes a password the request carried (migrate-domain login)', async (t) => {
  const doc = decodeRequest(
    wrap(`<cmd><action>migrate-domain</action><data version="3.0"><Envelope><Content ovf:id="ldg1"/><Content ovf:id="ldg1"><Section><Item><rasd:OtherResourceType>ldom_info</rasd:OtherResourceType><gprop:GenericProperty key="target">t4-b</gprop:GenericProperty><gprop:GenericProperty key="username">cm9vdA==</gprop:GenericProperty><gprop:GenericProperty key="password">c2VjcmV0</gprop:GenericProperty></Item></Section></Content></Envelope></data></cmd>`),
  );
  const text = encodeDocument(completeResponse(doc));
  t.notMatch(text, /c2VjcmV0/);
  t.notMatch(text, /key="password"/);
  t.notMatch(text, /cm9vdA==/, 'nor the login name');
  t.match(text, /key="target">t4-b</);
});

t.test('XML 1.1 is refused: it would let control characters in through references', async (t) => {
  const err = xmlError(t, () => decodeRequest('<?xml version="1.1"?><LDM_interface version="1.3"><cmd><action>&#1;</action></cmd></LDM_interface>'));
  t.equal(err.code, ErrorCodes.XML_NOT_WELL_FORMED);
  t.match(err.message, /XML version 1.1 is not accepted, only 1.0/);
  t.ok(decodeRequest('<?xml version="1.0"?><LDM_interface version="1.3"><cmd><action>list-domain</action></cmd></LDM_interface>'));
});
