/**
 * `ldm-agent validate FILE...`: structural checks (our decoder's rules, DOCTYPE
 * and limits included) and then schema validation with xmllint against
 * schemas/. Every problem is printed as `file:line: reason`.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cliMessages } from '../messages.ts';
import type { RootName } from '../xml/document.ts';
import { checkStructure, type Problem } from '../xml/validate.ts';

export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

export const SCHEMA_FOR: Record<RootName, string> = {
  LDM_interface: `${SCHEMA_DIR}ldm-interface.xsd`,
  LDM_event: `${SCHEMA_DIR}ldm-event.xsd`,
};

export interface SchemaResult {
  /** False when xmllint is not installed. */
  ran: boolean;
  problems: Problem[];
}

/** Validate one file against a schema with xmllint; its messages become problems. */
export function xmllintSchema(file: string, schema: string): SchemaResult {
  const run = spawnSync('xmllint', ['--noout', '--nonet', '--schema', schema, file], { encoding: 'utf8' });
  if (run.error) return { ran: false, problems: [] };
  const problems: Problem[] = [];
  for (const line of run.stderr.split('\n')) {
    if (!line.startsWith(`${file}:`)) continue;
    const m = /^:(\d+): (?:.*?(?:validity|parser) error : )?(.*)$/.exec(line.slice(file.length));
    if (m) problems.push({ line: Number(m[1]), reason: m[2]!.trim() });
  }
  if (run.status !== 0 && problems.length === 0) {
    problems.push({ line: 1, reason: run.stderr.trim().split('\n')[0] ?? `xmllint exited with ${run.status}` });
  }
  return { ran: true, problems };
}

export interface FileReport {
  file: string;
  problems: Problem[];
  schemaChecked: boolean;
}

export function validateFile(file: string): FileReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { file, schemaChecked: false, problems: [{ line: 0, reason: cliMessages.cannotRead((err as Error).message) }] };
  }
  const structure = checkStructure(text);
  // The schema adds nothing useful about a document we could not even parse.
  if (!structure.root) return { file, schemaChecked: false, problems: structure.problems };
  const schema = xmllintSchema(file, SCHEMA_FOR[structure.root]);
  const problems = [...structure.problems, ...schema.problems];
  problems.sort((a, b) => a.line - b.line);
  return { file, schemaChecked: schema.ran, problems };
}

/** Runs the subcommand; returns the exit status. */
export function runValidate(files: string[], out = process.stdout, err = process.stderr): number {
  if (files.length === 0) {
    err.write(cliMessages.validateUsage() + '\n');
    return 2;
  }
  let failed = 0;
  let warnedNoXmllint = false;
  for (const file of files) {
    const report = validateFile(file);
    if (!report.schemaChecked && report.problems.length === 0 && !warnedNoXmllint) {
      err.write(cliMessages.noXmllint() + '\n');
      warnedNoXmllint = true;
    }
    if (report.problems.length === 0) {
      out.write(`${file}: valid\n`);
      continue;
    }
    failed++;
    for (const p of report.problems) err.write(`${file}:${p.line}: ${p.reason}\n`);
  }
  return failed > 0 ? 1 : 0;
}
