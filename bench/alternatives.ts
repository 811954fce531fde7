/**
 * The two packages the design card names and the agent does not use, measured on the
 * agent's own documents (README, decisions): xmlbuilder2 to write them, fast-xml-parser
 * to read them. Used by bench/codec.ts; not part of the agent.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import { decodeResponse } from '../agent/xml/decode.ts';
import type { Item, LdmDocument, ResponseStatus } from '../agent/xml/document.ts';
import { encodeDocument, NAMESPACES } from '../agent/xml/encode.ts';
import { parseXml } from '../agent/xml/tree.ts';

const NS_ATTRS = Object.fromEntries(Object.entries(NAMESPACES).map(([p, uri]) => [`xmlns:${p}`, uri]));

function status(parent: XMLBuilder, r: ResponseStatus): void {
  const el = parent.ele('response');
  el.ele('status').txt(r.status);
  for (const m of r.messages) el.ele('resp_msg').txt(m);
}

function itemOf(parent: XMLBuilder, it: Item): void {
  const el = parent.ele('Item');
  el.ele('rasd:OtherResourceType').txt(it.type);
  if (it.uuid !== undefined) el.ele('uuid').txt(it.uuid);
  for (const [k, v] of it.rasd) el.ele(`rasd:${k}`).txt(v);
  for (const [k, v] of it.props) el.ele('gprop:GenericProperty', { key: k }).txt(v);
  if (it.bindings.length > 0) {
    const b = el.ele('bind:Binding');
    for (const x of it.bindings) itemOf(b, x);
  }
}

/**
 * The same document as encodeDocument writes it, built with xmlbuilder2's
 * element API and its defaults (prettyPrint on, like ours).
 */
export function buildWithXmlbuilder2(doc: LdmDocument): string {
  const root = create().ele(doc.root, { ...NS_ATTRS, version: doc.version });
  for (const cmd of doc.commands) {
    const c = root.ele('cmd');
    if (cmd.action !== null) c.ele('action').txt(cmd.action);
    for (const d of cmd.data) {
      const data = c.ele('data', { version: d.version });
      if (d.envelope) {
        const env = data.ele('Envelope');
        env.ele('References');
        for (const content of d.envelope.contents) {
          const ce = env.ele('Content', { 'xsi:type': `ovf:${content.type ?? 'VirtualSystem_Type'}`, 'ovf:id': content.id });
          for (const s of content.sections) {
            const se = ce.ele('Section', { 'xsi:type': `ovf:${s.type ?? 'ResourceAllocationSection_Type'}` });
            for (const it of s.items) itemOf(se, it);
          }
        }
      }
      if (d.response) status(data, d.response);
    }
    if (cmd.response) status(c, cmd.response);
  }
  if (doc.response) status(root, doc.response);
  return root.end({ headless: true, prettyPrint: true });
}

/**
 * What xmlbuilder2 (defaults) makes of a value that looks like an entity: a
 * variable `boot-args` = `&copy;` must come back as the same six characters.
 */
export function ampersandCheck(doc: LdmDocument): { value: string; xmlbuilder2: string; ours: string } {
  const value = '&copy;';
  const copy: LdmDocument = structuredClone(doc);
  copy.commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props.set('boot-args', value);
  const readBack = (text: string): string => {
    try {
      const got = decodeResponse(text).commands[0]!.data[0]!.envelope!.contents[0]!.sections[0]!.items[0]!.props.get('boot-args');
      return got === value ? `reads back as ${JSON.stringify(got)}` : `reads back as ${JSON.stringify(got)}, not ${JSON.stringify(value)}`;
    } catch (err) {
      return `does not parse: ${(err as Error).message.split('\n')[0]}`;
    }
  };
  return { value, xmlbuilder2: readBack(buildWithXmlbuilder2(copy)), ours: readBack(encodeDocument(copy)) };
}

/** The fast-xml-parser options the parse baseline runs with: its defaults, spelled out. */
export const FXP_OPTIONS = { ignoreAttributes: true, processEntities: true, parseTagValue: true } as const;
export const fxpParse = (text: string): unknown => new XMLParser(FXP_OPTIONS).parse(text);

/** Documents that are not well-formed XML, each broken in one way a peer might send. */
export const MALFORMED: [what: string, text: string][] = [
  ['mismatched end tag', '<LDM_interface version="1.3"><cmd><action>list-domain</acton></cmd></LDM_interface>'],
  ['unclosed root', '<LDM_interface version="1.3"><cmd><action>list-domain</action></cmd>'],
  ['two roots', '<LDM_interface version="1.3"/><LDM_interface version="1.3"/>'],
  ['duplicate attribute', '<LDM_interface version="1.3" version="1.0"><cmd/></LDM_interface>'],
  ['unquoted attribute', '<LDM_interface version=1.3><cmd/></LDM_interface>'],
  ['bare ampersand', '<LDM_interface version="1.3"><cmd><action>a & b</action></cmd></LDM_interface>'],
  ['undefined entity', '<LDM_interface version="1.3"><cmd><action>&nbsp;</action></cmd></LDM_interface>'],
  ['< in an attribute', '<LDM_interface version="1<3"><cmd/></LDM_interface>'],
  ['text after the root', '<LDM_interface version="1.3"><cmd/></LDM_interface>trailing'],
  ['control character', '<LDM_interface version="1.3"><cmd><action>\u0001</action></cmd></LDM_interface>'],
];

/** How many of MALFORMED each reader accepts (returns a value for, without an error). */
export function malformedAccepted(): { saxes: number; fxp: number; fxpValidator: number; total: number; fxpAccepted: string[] } {
  let saxes = 0;
  let fxp = 0;
  let fxpValidator = 0;
  const fxpAccepted: string[] = [];
  for (const [what, text] of MALFORMED) {
    try {
      parseXml(text);
      saxes++;
    } catch {}
    try {
      fxpParse(text);
      fxp++;
      fxpAccepted.push(what);
    } catch {}
    if (XMLValidator.validate(text) === true) fxpValidator++;
  }
  return { saxes, fxp, fxpValidator, total: MALFORMED.length, fxpAccepted };
}
