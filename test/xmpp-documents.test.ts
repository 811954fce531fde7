// Documents as they are written: every request file of xml-examples/, byte for byte
// (an XML declaration first), over TLS and the local socket, whole and one byte at a
// time; comments, PIs and declarations between documents skipped; garbage still refused.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { XmlError } from '../agent/errors.ts';
import { DEFAULT_XML_LIMITS } from '../agent/xml/limits.ts';
import type { XmlElement } from '../agent/xml/tree.ts';
import { StreamReader } from '../agent/xmpp/stream.ts';
import { startTestAgent } from './helpers/agent.ts';
import { HEADER, LIST_DOMAIN, onlineRawPeer, RawPeer } from './helpers/raw.ts';

const REQUESTS = fileURLToPath(new URL('../xml-examples/requests/', import.meta.url));
const files = [
  ...readdirSync(REQUESTS).filter((f) => f.endsWith('.xml')),
  ...readdirSync(join(REQUESTS, '1.x-style')).map((f) => join('1.x-style', f)),
].sort();
const bytes = new Map(files.map((f) => [f, readFileSync(join(REQUESTS, f))]));

const agent = await startTestAgent(t, { users: [['admin', 'write', 'admin-secret']] });

const RESPONSE = /<LDM_interface[\s>][\s\S]*?<\/LDM_interface>/g;
/** The responses (not events) the peer received since `from`. */
const responses = (p: RawPeer, from = 0) => p.text.slice(from).match(RESPONSE) ?? [];

async function unixPeer(): Promise<RawPeer> {
  const p = await RawPeer.unix(agent.unixPath);
  p.write(HEADER);
  await p.until(/<\/stream:features>/);
  p.text = '';
  return p;
}

async function streamError(p: RawPeer): Promise<{ condition: string; text: string; closed: boolean }> {
  const seen = await p.until(/<\/stream:error>/);
  const m = /<stream:error><([a-z-]+) [^>]*\/>(?:<text[^>]*>([^<]*)<\/text>)?<\/stream:error>/.exec(seen);
  return { condition: m?.[1] ?? '(none)', text: m?.[2] ?? '', closed: await p.closedWithin(3000) };
}

t.test('the request files begin with an XML declaration (libldom\'s byte sequence aside)', async (t) => {
  t.ok(files.length >= 60, `${files.length} files`);
  for (const [f, b] of bytes) {
    if (!f.startsWith('libldom-')) t.match(b.toString('utf8'), /^<\?xml version="1.0"\?>\n<LDM_interface/, f);
  }
});

/** Wait until `n` responses have arrived (a counting regex over the whole text would backtrack for ever). */
async function responsesArrived(p: RawPeer, n: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  while (responses(p).length < n && !p.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return responses(p).length;
}

/** Send each file as shipped and wait for its response before the next. */
async function eachFileAnswered(t: Test, p: RawPeer): Promise<void> {
  for (const [f, b] of bytes) {
    const mark = p.text.length;
    p.write(b);
    const seen = await p.until(/<LDM_interface[\s>][\s\S]*?<\/LDM_interface>/, 10_000, mark).catch((err: Error) => err.message);
    const answer = responses(p, mark)[0] ?? '';
    t.match(answer, /<response>\s*<status>(success|failure)<\/status>/, `${f} is answered`) || t.comment(seen);
  }
  t.notOk(p.closed, 'the connection stays open');
  t.notMatch(p.text, /<stream:error>/, 'no stream error');
}

t.test('every request file, byte for byte, on an authenticated TLS stream', async (t) => {
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  await eachFileAnswered(t, p);
  p.destroy();
});

t.test('every request file, byte for byte, on the local socket', async (t) => {
  const p = await unixPeer();
  await eachFileAnswered(t, p);
  p.destroy();
});

t.test('all files back to back, written one byte at a time: one response each, in order', async (t) => {
  const all = Buffer.concat([...bytes.values()]);
  for (const [name, open] of [
    ['local socket', unixPeer],
    ['TLS', () => onlineRawPeer(agent.port, 'admin', 'admin-secret')],
  ] as const) {
    const p = await open();
    // Over TLS each byte is its own record; the local socket gets every file, TLS the first ten.
    const data = name === 'TLS' ? Buffer.concat([...bytes.values()].slice(0, 10)) : all;
    const expected = name === 'TLS' ? 10 : bytes.size;
    for (let i = 0; i < data.length; i++) {
      p.write(data.subarray(i, i + 1));
      // Let the agent read it before the next byte, so reads really are one byte each.
      if (i % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    t.equal(await responsesArrived(p, expected, 20_000), expected, `${name}: ${expected} responses`);
    const firstAction = (doc: string) => /<action>([^<]*)<\/action>/.exec(doc)?.[1];
    t.strictSame(
      responses(p).map(firstAction),
      [...bytes.values()].slice(0, expected).map((b) => firstAction(b.toString('utf8'))),
      `${name}: each answers its request, in order`,
    );
    t.notOk(p.closed, `${name}: still open`);
    p.destroy();
  }
});

t.test('the stream reader gives the same documents whatever the splits', async (t) => {
  const text = `<?xml version='1.0'?><stream:stream xmlns='jabber:client'>` + [...bytes.values()].map(String).join('\n<!-- next -->\n<?pi x?>\r\n');
  const read = (chunks: Buffer[]) => {
    const out: XmlElement[] = [];
    const r = new StreamReader(DEFAULT_XML_LIMITS, { header: () => {}, element: (el) => out.push(el), end: () => {} });
    for (const c of chunks) r.write(c);
    return out;
  };
  const all = Buffer.from(text);
  const whole = read([all]);
  t.equal(whole.length, bytes.size, 'one element per file');
  const ones = read(Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1)));
  t.strictSame(ones, whole, 'one byte at a time');
  // Two reads, split at every position of the first documents (declarations, comments, PIs, tags).
  const head = Buffer.from(text.slice(0, text.indexOf('</LDM_interface>', text.indexOf('</LDM_interface>') + 1) + 200));
  const headCount = read([head]).length;
  t.equal(headCount, 2);
  const expected = JSON.stringify(whole.slice(0, headCount));
  const wrong: number[] = [];
  for (let cut = 1; cut < head.length; cut++) {
    if (JSON.stringify(read([head.subarray(0, cut), head.subarray(cut)])) !== expected) wrong.push(cut);
  }
  t.same(wrong, [], `every split of the first ${head.length} bytes gives the same two documents`);
});

t.test('the stream reader: same elements and same verdict however the input is split (fuzzed)', async (t) => {
  const seed = process.env['FUZZ_SEED'] ? Number(process.env['FUZZ_SEED']) : 0x5_7ea3;
  // Pieces of valid and broken streams; boundaries between them are where the scanner has to be right.
  const piece = fc.constantFrom(
    LIST_DOMAIN,
    '<a x="/>" y=\'>\'/>',
    '<b><![CDATA[</b> ]]> <!-- </b> --> <?p </b>?> <c/></b>',
    '<?xml version="1.0"?>',
    "<?xml version='1.0' encoding='utf-8'?>",
    '<?xml version="1.1"?>',
    '<?xml-stylesheet href="x"?>',
    '<!-- c -->',
    '<!---->',
    '<?pi?>',
    ' \r\n\t',
    '\ufeff',
    'é',
    'text',
    '<',
    '>',
    '</x>',
    '<!DOCTYPE x>',
    '<![CDATA[x]]>',
    '<stream:stream>',
    '</stream:stream>',
    '<d>',
    '</d>',
  );
  const stream = fc.tuple(fc.array(piece, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }));
  const read = (chunks: Buffer[]) => {
    const out: string[] = [];
    const r = new StreamReader(DEFAULT_XML_LIMITS, {
      header: (h) => out.push(h.again ? 'header again' : 'header'),
      element: (el) => out.push(JSON.stringify(el)),
      end: () => out.push('end'),
    });
    try {
      for (const c of chunks) r.write(c);
    } catch (err) {
      out.push(err instanceof XmlError ? err.code : `not an XmlError: ${(err as Error).message}`);
    }
    return out;
  };
  fc.assert(
    fc.property(stream, ([pieces, cuts]) => {
      const all = Buffer.from(`<?xml version='1.0'?><stream:stream xmlns='jabber:client'>` + pieces.join(''));
      const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
      const chunks = [0, ...points].map((from, k) => all.subarray(from, [...points, all.length][k]));
      const whole = read([all]);
      const split = read(chunks);
      const ones = read(Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1)));
      return JSON.stringify(split) === JSON.stringify(whole) && JSON.stringify(ones) === JSON.stringify(whole);
    }),
    { seed, numRuns: 400 },
  );
  t.pass(`400 streams (seed ${seed}): whole, split at random points, and one byte at a time agree`);
});

t.test('comments, processing instructions, declarations and whitespace between documents are skipped', async (t) => {
  for (const open of [unixPeer, () => onlineRawPeer(agent.port, 'admin', 'admin-secret')]) {
    const p = await open();
    p.write(
      `\n<!-- first a comment -->\n<?ldm-client hint="x"?>\n${LIST_DOMAIN}\r\n` +
        `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!-- <LDM_interface> in a comment is no document -->${LIST_DOMAIN}` +
        `<?xml version='1.0'?>`,
    );
    p.write(`\n${LIST_DOMAIN}`);
    t.equal(await responsesArrived(p, 3, 5000), 3, 'three documents, three responses');
    t.notOk(p.closed);
    p.destroy();
  }
});

t.test('what is not a document still ends the stream', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['text between documents', 'hello' + LIST_DOMAIN, /only whitespace, comments, processing instructions and XML declarations/],
    ['a bare less-than', '<<' + LIST_DOMAIN, /not well-formed/],
    ['XML 1.1 declared between documents', '<?xml version="1.1"?>' + LIST_DOMAIN, /XML version 1.1 is not accepted/],
    ['another encoding declared', '<?xml version="1.0" encoding="ISO-8859-1"?>' + LIST_DOMAIN, /encoding ISO-8859-1 is not accepted/],
    ['a malformed declaration', '<?xml encoding="UTF-8"?>' + LIST_DOMAIN, /malformed XML declaration/],
    ['CDATA between documents', '<![CDATA[x]]>' + LIST_DOMAIN, /only whitespace/],
  ];
  for (const [what, input, reason] of cases) {
    const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
    p.write(input);
    const e = await streamError(p);
    t.equal(e.condition, 'not-well-formed', what);
    t.match(e.text, reason, what);
    t.ok(e.closed, `${what}: closed`);
    t.equal(responses(p).length, 0, `${what}: nothing answered`);
  }
  const p = await onlineRawPeer(agent.port, 'admin', 'admin-secret');
  p.write(`<?xml version="1.0"?>\n<!DOCTYPE LDM_interface [<!ENTITY x "y">]>` + LIST_DOMAIN);
  const e = await streamError(p);
  t.equal(e.condition, 'restricted-xml', 'a DOCTYPE between documents');
  t.match(e.text, /DOCTYPE/);
  t.equal(responses(p).length, 0);
});
