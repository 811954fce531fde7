/**
 * Writes the examples of xml-examples/responses/ and xml-examples/events/ that
 * the agent cannot produce yet, with the agent's own codec:
 *
 *   npx tsx xml-examples/generate.ts
 *
 * That is migrate-domain (the agent answers "not implemented" for now): its
 * success and failure responses, and the migration progress events. Every
 * other response and event example is captured from a running agent by
 * test/examples-agent.test.ts (the list is test/helpers/examples.ts).
 *
 * The responses start from the hand-written request (requests/migrate-domain.xml,
 * decoded as the agent decodes it): the object-level outcome is filled in here,
 * in place of a handler, and completeResponse() adds the command and overall
 * levels exactly as the agent does. test/examples.test.ts checks that the
 * committed files equal this output.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeRequest, type DocumentKind } from '../agent/xml/decode.ts';
import { failure, item, type Content, type Data, type Item, type LdmDocument, type Section } from '../agent/xml/document.ts';
import { encodeDocument } from '../agent/xml/encode.ts';
import { completeResponse } from '../agent/xml/respond.ts';
import { toLdmEvent } from '../agent/manager/events.ts';
import type { MigrationStatus } from '../agent/model/migrations.ts';

export const EXAMPLES_DIR = dirname(fileURLToPath(import.meta.url));

/** One generated file: its path under xml-examples/, how to decode it, and its typed document. */
export interface Example {
  path: string;
  kind: DocumentKind;
  doc: LdmDocument;
}

/** The text written for an example: exactly what encodeDocument gives, with an XML declaration. */
export function render(doc: LdmDocument): string {
  return encodeDocument(doc, { declaration: true });
}

// ---------------------------------------------------------------- building blocks

/** The hand-written request for an action, decoded as the agent would. */
function request(file: string): LdmDocument {
  return decodeRequest(readFileSync(join(EXAMPLES_DIR, 'requests', file), 'utf8'));
}

const section = (items: Item[]): Section => ({ type: 'ResourceAllocationSection_Type', items });
const domain = (id: string, items: Item[]): Content => ({ id, type: 'VirtualSystem_Type', sections: [section(items)] });

/** The first object of the first command: where the single-object examples put their outcome. */
function firstData(doc: LdmDocument): Data {
  const data = doc.commands[0]?.data[0];
  if (!data) throw new Error('example request has no <data>');
  return data;
}

/** Response in which the (only) object failed with these messages. */
function objectFailure(doc: LdmDocument, ...messages: string[]): LdmDocument {
  firstData(doc).response = failure(...messages);
  return completeResponse(doc);
}

// ---------------------------------------------------------------- migrate-domain (not implemented by the agent yet)

/** The reporting host of progress events (the migration source). */
const HOST = 't4-a';

/** The migrate-domain request with the target login removed: a response never echoes it. */
function migrateRequest(): LdmDocument {
  const doc = request('migrate-domain.xml');
  for (const content of firstData(doc).envelope?.contents ?? []) {
    for (const s of content.sections) {
      for (const it of s.items) {
        it.props.delete('username');
        it.props.delete('password');
      }
    }
  }
  return doc;
}

function responses(): Array<[string, LdmDocument]> {
  return [
    ['migrate-domain.success', completeResponse(migrateRequest())],
    [
      'migrate-domain.failure',
      objectFailure(
        migrateRequest(),
        'Unable to bind 2G memory region at real address 0x8000000',
        'Domain Migration of LDom ldg1 failed',
      ),
    ],
  ];
}

function event(action: string, contents: Content[]): LdmDocument {
  return {
    root: 'LDM_event',
    version: '1.1',
    commands: [{ action, options: [], arguments: [], data: [{ version: '3.0', envelope: { contents, sections: [] } }] }],
  };
}

/**
 * Migration progress events (protocol.md section 6): an ldom_info with progress,
 * status and the reporting host, rendered by the agent's own toLdmEvent from the
 * model event agent/model/migrations.ts announces.
 */
function events(): Array<[string, LdmDocument]> {
  const progress = (percent: number, status: MigrationStatus) => {
    const ev = toLdmEvent({ class: 'progress', domain: 'ldg1', progress: percent, status, source: HOST });
    // The type the encoder writes when a Content has none, as decoding the file gives it back.
    return event(ev.action, ev.envelope.contents.map((c) => ({ ...c, type: c.type ?? 'VirtualSystem_Type' })));
  };
  return [
    ['migration-progress', progress(45, 'ongoing')],
    ['migration-done', progress(100, 'done')],
    ['migration-failed', progress(62, 'failed')],
  ];
}

// ---------------------------------------------------------------- all of them

/** Every generated example, in a stable order. */
export function buildExamples(): Example[] {
  const out: Example[] = [];
  for (const [name, doc] of responses()) out.push({ path: `responses/${name}.xml`, kind: 'response', doc });
  for (const [name, doc] of events()) out.push({ path: `events/${name}.xml`, kind: 'event', doc });
  return out;
}

function main(): void {
  for (const ex of buildExamples()) {
    const file = join(EXAMPLES_DIR, ex.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, render(ex.doc));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
