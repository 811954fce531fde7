/**
 * Codec benchmark: parse (decodeResponse of the text) and build (encodeDocument of the
 * typed document) for a one-domain and a 100-domain `list-domain` response, each beside
 * a baseline measured in the same run on the same bytes/data:
 *
 *   parse  vs  fast-xml-parser's `parse(text)` with its default options, spelled out in
 *              bench/alternatives.ts (attributes ignored; no limits, no typing): what
 *              reading the bytes costs at all;
 *   build  vs  `JSON.stringify` of the same typed data (Maps made objects beforehand,
 *              outside the timed loop): what serializing the data costs at all; and vs
 *              xmlbuilder2 building the same document (the design card's builder).
 *
 * It also prints what the two design-card packages do with hostile values: an
 * entity-looking `&copy;` through xmlbuilder2, and not well-formed documents through
 * fast-xml-parser (README: why the agent uses neither).
 *
 * Parse is also measured beside saxes alone (the tokenizer the codec is built on, with
 * handlers that only count), so the cost of the tree and the typed decoding shows too.
 *
 * Schema validation (agent/xml/schema.ts, what `ldm-agent validate` runs) of the same
 * texts, once the schema is compiled, beside libxml2 parsing the text alone (the floor
 * under validation) and beside decodeResponse; and the compilation of ldm-interface.xsd
 * beside libxml2 parsing the schema files alone.
 *
 * The ratio is our time over the baseline's time for one document, so it shows the
 * codec's own overhead. Environment: BENCH_ROUND_MS (default 400), BENCH_ROUNDS (5).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { SaxesParser } from 'saxes';
import { decodeResponse } from '../agent/xml/decode.ts';
import { item, success, type Content, type Item, type LdmDocument } from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { ampersandCheck, buildWithXmlbuilder2, FXP_OPTIONS, fxpParse, malformedAccepted } from './alternatives.ts';
import { loadSchemas, SCHEMA_DIR, Schemas } from '../agent/xml/schema.ts';
import { figure, opsPerSecond, sunk } from './measure.ts';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP_MS = Math.min(300, ROUND_MS);

// ---------------------------------------------------------------------------------------------
// Workloads: what a list-domain answer looks like on a busy machine.

const mac = (n: number, nic: number) => `00:14:4f:f${nic}:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;

function domain(n: number): Content {
  const name = n === 0 ? 'primary' : `ldg${n}`;
  const info: Item = {
    ...item(
      'ldom_info',
      {
        state: n % 7 === 3 ? 'bound' : 'active',
        flags: n === 0 ? '-n-cv-' : '-n----',
        hostid: `0x84fb${(0x1000 + n).toString(16)}`,
        master: '',
        'failure-policy': 'ignore',
        'extended-mapin-space': 'on',
        'rc-add-policy': '',
        'perf-counters': n === 0 ? 'global' : 'htstrand',
        'cpu-arch': 'native',
      },
      { Address: mac(n, 0) },
    ),
    uuid: `6f1b0f0e-2d3c-4b5a-9e8f-${(0x0a1b2c3d0000 + n).toString(16).padStart(12, '0')}`,
  };
  const items: Item[] = [
    info,
    item('cpu', { wcore: n % 2 === 0 ? '1' : '0' }, { AllocationUnits: String(8 * (1 + (n % 4))) }),
    item('mau', {}, { AllocationUnits: String(n % 3) }),
    item('memory', {}, { AllocationUnits: `${4 << n % 3}G` }),
    item('disk', { vdisk_name: 'vdisk0', service_name: 'primary-vds0', vol_name: `${name}-boot`, timeout: '0' }),
    item('disk', { vdisk_name: 'vdisk1', service_name: 'primary-vds0', vol_name: `${name}-data & logs`, timeout: '30' }),
    item('network', { vnet_name: 'vnet0', service_name: 'primary-vsw0', pvid: '1', linkprop: 'phys-state' }, { Address: mac(n, 1) }),
    item('network', { vnet_name: 'vnet1', service_name: 'primary-vsw1', pvid: '1', vid: '100,200', mode: '' }, { Address: mac(n, 2) }),
    item('console', { port: String(5000 + n), service_name: 'primary-vcc0', group: name, 'enable-log': 'true' }),
  ];
  return { id: name, type: 'VirtualSystem_Type', sections: [{ type: 'ResourceAllocationSection_Type', items }] };
}

function listing(domains: number): LdmDocument {
  return {
    root: 'LDM_interface',
    version: '1.3',
    commands: [
      {
        action: 'list-domain',
        options: [],
        arguments: [],
        data: [{ version: '3.0', envelope: { contents: Array.from({ length: domains }, (_, i) => domain(i)), sections: [] }, response: success() }],
        response: success(),
      },
    ],
    response: success(),
  };
}

/** The same data as plain JSON-able values, for the JSON.stringify baseline. */
function plain(doc: LdmDocument): unknown {
  return JSON.parse(JSON.stringify(doc, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v)));
}

/** Decoded documents carry `line`; the source does not. */
function withoutLines(doc: LdmDocument): unknown {
  return JSON.parse(JSON.stringify(doc, (k, v: unknown) => (k === 'line' ? undefined : v instanceof Map ? [...v] : v)));
}

// ---------------------------------------------------------------------------------------------
// Measurement

/** Each function warmed up, then their rounds interleaved so all see the same machine; medians. */
const measure = (fns: (() => number)[]): number[] => opsPerSecond(fns, { warmupMs: WARMUP_MS, roundMs: ROUND_MS, rounds: ROUNDS });

/** saxes with the codec's options and handlers that only count: the floor under decodeResponse. */
function saxesOnly(text: string): number {
  let n = 0;
  const p = new SaxesParser({ xmlns: false, position: true });
  p.on('opentag', () => n++);
  p.on('closetag', () => n++);
  p.on('text', () => n++);
  p.write(text).close();
  return n;
}

interface Row {
  figure: string;
  oursName: string;
  baselineName: string;
  /** Bytes processed per document by each side (parse: the same XML; build: each side's output). */
  oursBytes: number;
  baselineBytes: number;
  ours: number;
  baseline: number;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const mbps = (rate: number, bytes: number) => ((rate * bytes) / 1e6).toFixed(1);
const ratio = (r: Row) => r.baseline / r.ours; // = our time per document / baseline time per document

function printTable(rows: Row[]): void {
  const cells = rows.map((r) => [
    r.figure,
    `${int(r.ours)} doc/s`,
    `${mbps(r.ours, r.oursBytes)} MB/s`,
    `${int(r.baseline)} doc/s`,
    `${mbps(r.baseline, r.baselineBytes)} MB/s`,
    `${ratio(r).toFixed(2)}x`,
    `${r.oursName} / ${r.baselineName}`,
  ]);
  const head = ['figure', 'ours', '', 'baseline', '', 'time ratio', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 || i === c.length - 1 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(line(head));
  for (const c of cells) console.log(line(c));
}

function printMarkdown(rows: Row[]): void {
  console.log('| figure | value | baseline | ratio |');
  console.log('|---|---|---|---|');
  for (const r of rows) {
    const value = `${int(r.ours)} doc/s, ${mbps(r.ours, r.oursBytes)} MB/s (${r.oursName})`;
    const base = `${int(r.baseline)} doc/s, ${mbps(r.baseline, r.baselineBytes)} MB/s (${r.baselineName})`;
    console.log(`| ${r.figure} | ${value} | ${base} | ${ratio(r).toFixed(2)}x time |`);
    figure({ figure: r.figure, value: r.ours, unit: 'doc/s', baseline: r.baselineName, baselineValue: r.baseline });
  }
}

/** The .xsd files under schemas/ that compiling ldm-interface.xsd reads (all but the event root), as bytes. */
function schemaFiles(dir = SCHEMA_DIR): Buffer[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? schemaFiles(join(dir, e.name))
      : e.name.endsWith('.xsd') && e.name !== 'ldm-event.xsd'
        ? [readFileSync(join(dir, e.name))]
        : [],
  );
}

export async function run(): Promise<void> {
  const started = performance.now();
  const loadStarted = performance.now();
  const schemas = await loadSchemas();
  const loadMs = performance.now() - loadStarted;
  const lib = await import('libxml2-wasm');
  /** libxml2's parse of a text, nothing else: the floor under schema validation. */
  const libxml2Parse = (text: string) => {
    const doc = lib.XmlDocument.fromString(text);
    doc.dispose();
    return 1;
  };
  const workloads = [
    { name: 'list-domain, 1 domain', doc: listing(1) },
    { name: 'list-domain, 100 domains', doc: listing(100) },
  ];
  const rows: Row[] = [];
  for (const w of workloads) {
    const text = encodeDocument(w.doc);
    const xmlBytes = Buffer.byteLength(text, 'utf8');
    const data = plain(w.doc);
    const jsonBytes = Buffer.byteLength(JSON.stringify(data), 'utf8');
    // Measure the real path, not an error path: the text must decode back to the data.
    if (!isDeepStrictEqual(withoutLines(decodeResponse(text)), withoutLines(w.doc))) {
      throw new Error(`bench: ${w.name} does not round-trip through the codec`);
    }
    if (typeof fxpParse(text) !== 'object') throw new Error('bench: fast-xml-parser returned nothing');

    const [parse, fxp, saxes] = measure([
      () => decodeResponse(text).commands.length,
      () => (fxpParse(text) ? 1 : 0),
      () => saxesOnly(text),
    ]) as [number, number, number];
    const parseRow = { figure: `parse ${w.name} (${kb(xmlBytes)} XML)`, oursName: 'decodeResponse', oursBytes: xmlBytes, baselineBytes: xmlBytes, ours: parse };
    rows.push({ ...parseRow, baselineName: `fast-xml-parser ${JSON.stringify(FXP_OPTIONS)}`, baseline: fxp });
    rows.push({ ...parseRow, figure: `${parseRow.figure} over its tokenizer`, baselineName: 'saxes alone', baseline: saxes });

    const built = buildWithXmlbuilder2(w.doc);
    if (!isDeepStrictEqual(withoutLines(decodeResponse(built)), withoutLines(w.doc))) throw new Error(`bench: xmlbuilder2's ${w.name} is not the same document`);
    const builtBytes = Buffer.byteLength(built, 'utf8');
    const [build, json, xb2] = measure([
      () => encodeDocument(w.doc).length,
      () => JSON.stringify(data).length,
      () => buildWithXmlbuilder2(w.doc).length,
    ]) as [number, number, number];
    const buildRow = { figure: `build ${w.name} (${kb(xmlBytes)} XML)`, oursName: 'encodeDocument', oursBytes: xmlBytes, ours: build };
    rows.push({ ...buildRow, figure: `${buildRow.figure}, ${kb(jsonBytes)} JSON`, baselineName: 'JSON.stringify', baselineBytes: jsonBytes, baseline: json });
    rows.push({ ...buildRow, baselineName: 'xmlbuilder2 (element API, defaults)', baselineBytes: builtBytes, baseline: xb2 });

    const problems = schemas.validate('LDM_interface', text);
    if (problems.length > 0) throw new Error(`bench: ${w.name} is not valid against schemas/: ${problems[0]!.line}: ${problems[0]!.reason}`);
    const [valid, libxml2, decode] = measure([
      () => schemas.validate('LDM_interface', text).length + 1,
      () => libxml2Parse(text),
      () => decodeResponse(text).commands.length,
    ]) as [number, number, number];
    const validRow = { figure: `validate ${w.name} against schemas/ (${kb(xmlBytes)} XML)`, oursName: 'Schemas.validate', oursBytes: xmlBytes, baselineBytes: xmlBytes, ours: valid };
    rows.push({ ...validRow, baselineName: 'libxml2 parse alone', baseline: libxml2 });
    rows.push({ ...validRow, baselineName: 'decodeResponse', baseline: decode });
  }

  // Compiling the interface schema (13 files, through includes and imports) from scratch, each time
  // in a fresh set, beside libxml2 parsing the same files without compiling them.
  const files = schemaFiles();
  const [compiles, parses] = measure([
    () => {
      const fresh = new Schemas(lib);
      fresh.compile('LDM_interface');
      fresh.close();
      return 1;
    },
    () => {
      for (const f of files) lib.XmlDocument.fromBuffer(f).dispose();
      return files.length;
    },
  ]) as [number, number];
  const ms = (rate: number) => (1000 / rate).toFixed(2);

  console.log(`codec: node ${process.version}, ${ROUNDS} rounds of ${ROUND_MS} ms each side, median shown; ratio = our time / baseline time per document`);
  printTable(rows);
  console.log(`compile schemas/ldm-interface.xsd: ${ms(compiles)} ms; libxml2 parse of its ${files.length} files alone: ${ms(parses)} ms; time ratio ${(parses / compiles).toFixed(2)}x`);
  console.log('');
  console.log('Markdown (figure | value | baseline | ratio):');
  console.log('');
  printMarkdown(rows);
  console.log(`| compile schemas/ldm-interface.xsd (${files.length} files) | ${ms(compiles)} ms | libxml2 parse of the ${files.length} files alone: ${ms(parses)} ms | ${(parses / compiles).toFixed(2)}x time |`);
  figure({ figure: `compile schemas/ldm-interface.xsd (${files.length} files)`, value: 1000 / compiles, unit: 'ms', baseline: `libxml2 parse of the ${files.length} files alone`, baselineValue: 1000 / parses });
  console.log('');
  console.log(`schemas: import of libxml2-wasm and reader set-up, once per process: ${loadMs.toFixed(1)} ms (no baseline: measured once)`);
  const amp = ampersandCheck(workloads[0]!.doc);
  console.log(`a property value ${JSON.stringify(amp.value)}: encodeDocument's document ${amp.ours}; xmlbuilder2's ${amp.xmlbuilder2}`);
  const bad = malformedAccepted();
  console.log(
    `not well-formed documents accepted, of ${bad.total}: saxes (the codec) ${bad.saxes}; fast-xml-parser's parse ${bad.fxp} (${bad.fxpAccepted.join(', ')}); its XMLValidator ${bad.fxpValidator}`,
  );
  console.log(`codec: done in ${((performance.now() - started) / 1000).toFixed(1)} s${sunk() ? '' : ' (sink 0?)'}`);
}
