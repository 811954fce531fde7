/**
 * `ldm xml FILE|-`: send one LDM_interface document exactly as written (its XML
 * declaration included) and print the response document. Exit 0 when the
 * response's overall status is success, 1 otherwise.
 *
 * The text is only checked for being well-formed before it is sent: the agent
 * answers a well-formed document that is not a valid request with a failure
 * response (printed like any other), but bytes that are not XML would break its
 * stream, and `file:line: reason` says more than a closed connection.
 */
import { readFileSync } from 'node:fs';
import { ldmMessages as m } from '../../messages.ts';
import { XmlError } from '../../errors.ts';
import { encodeDocument } from '../../xml/encode.ts';
import { DEFAULT_XML_LIMITS } from '../../xml/limits.ts';
import { parseXml } from '../../xml/tree.ts';
import { UsageError, type CliInput } from '../io.ts';
import type { LdmCommand } from './command.ts';
import { CommandError, type LdmContext } from './context.ts';
import { succeeded } from './migrate.ts';

/** The agent takes documents up to its own limit; reading stops a little past it. */
const MAX_BYTES = DEFAULT_XML_LIMITS.maxBytes + 1;

async function readAll(input: CliInput): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(b);
    bytes += b.length;
    if (bytes > MAX_BYTES) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function runXml(ctx: LdmContext, args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError(m.xmlArgs());
  const file = args[0]!;
  let text: string;
  try {
    text = file === '-' ? await readAll(ctx.io.stdin) : readFileSync(file, 'utf8');
  } catch (err) {
    throw new CommandError(m.cannotRead(file === '-' ? 'standard input' : file, (err as NodeJS.ErrnoException).code ?? (err as Error).message));
  }
  const where = file === '-' ? 'standard input' : file;
  try {
    parseXml(text);
  } catch (err) {
    if (err instanceof XmlError) throw new CommandError(m.xmlNotSent(where, err.line, err.message));
    throw err;
  }
  const r = await ctx.request(text);
  ctx.out(encodeDocument(r, { declaration: true }));
  return succeeded(r) ? 0 : 1;
}

export const commands: LdmCommand[] = [{ names: ['xml'], usage: 'xml FILE | -', run: runXml }];
