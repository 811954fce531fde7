/**
 * `ldm-agent validate FILE...`: structural checks (our decoder's rules, DOCTYPE
 * and limits included) and then validation against schemas/ in-process
 * (agent/xml/schema.ts, libxml2 as WebAssembly, loaded only by this command).
 * Every problem is printed as `file:line: reason`.
 */
import { readFileSync } from 'node:fs';
import { ErrorCodes, LdmError } from '../errors.ts';
import { cliMessages } from '../messages.ts';
import { loadSchemas, type Schemas } from '../xml/schema.ts';
import { checkStructure, type Problem } from '../xml/validate.ts';

export interface FileReport {
  file: string;
  problems: Problem[];
}

export function validateFile(file: string, schemas: Schemas): FileReport {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    return { file, problems: [{ line: 0, reason: cliMessages.cannotRead((err as Error).message) }] };
  }
  const structure = checkStructure(bytes.toString('utf8'));
  // The schema adds nothing useful about a document we could not even parse.
  if (!structure.root) return { file, problems: structure.problems };
  // The bytes, not our decoded text: libxml2 then honours the document's encoding declaration.
  const problems = [...structure.problems, ...schemas.validate(structure.root, bytes)];
  problems.sort((a, b) => a.line - b.line);
  return { file, problems };
}

/** Runs the subcommand; resolves to the exit status. */
export async function runValidate(files: string[], out = process.stdout, err = process.stderr): Promise<number> {
  if (files.length === 0) {
    err.write(cliMessages.validateUsage() + '\n');
    return 2;
  }
  let schemas: Schemas | undefined;
  let failed = 0;
  try {
    schemas = await loadSchemas();
    for (const file of files) {
      const report = validateFile(file, schemas);
      if (report.problems.length === 0) {
        out.write(`${file}: valid\n`);
        continue;
      }
      failed++;
      for (const p of report.problems) err.write(`${file}:${p.line}: ${p.reason}\n`);
    }
  } catch (e) {
    // A schema that cannot be read or compiled: no verdict is possible for any file.
    if (!(e instanceof LdmError && e.code === ErrorCodes.FILE)) throw e;
    err.write(cliMessages.cannotCheck(e.message) + '\n');
    return 1;
  } finally {
    schemas?.close();
  }
  return failed > 0 ? 1 : 0;
}
