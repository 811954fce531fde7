/**
 * Persistence of the domain database: one JSON file, `STATE/domains.json`,
 * replaced atomically and durably (temporary file, fsync, rename, fsync of
 * the directory) before a change is acknowledged. A kill at any moment leaves
 * the old or the new file, never a mix. A file that cannot be read as our
 * state stops the agent with a message naming it: it is never reset.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.ts';
import { ErrorCodes, LdmError } from '../errors.ts';
import { modelMessages } from '../messages.ts';
import type { LdmState } from './types.ts';

export const STATE_FILE = 'domains.json';

export class StateStore {
  readonly file: string;

  constructor(stateDir: string) {
    this.file = join(stateDir, STATE_FILE);
  }

  /** The saved state, or undefined on the very first start (no file yet). */
  async load(): Promise<LdmState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LdmError(ErrorCodes.STATE_DAMAGED, modelMessages.stateUnreadable(this.file, (err as Error).message));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new LdmError(ErrorCodes.STATE_DAMAGED, modelMessages.stateDamaged(this.file, (err as Error).message));
    }
    const problem = shapeProblem(json);
    if (problem) throw new LdmError(ErrorCodes.STATE_DAMAGED, modelMessages.stateDamaged(this.file, problem));
    return json as LdmState;
  }

  async save(state: LdmState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 });
  }
}

/** A cheap structural check: enough to refuse a file that is not ours, not a full schema. */
function shapeProblem(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'not a JSON object';
  const s = json as Record<string, unknown>;
  if (s['version'] !== 1) return `unknown format version ${JSON.stringify(s['version'])}`;
  for (const key of ['domains', 'vds', 'vsw', 'vcc', 'spconfigs']) {
    if (!Array.isArray(s[key])) return `"${key}" is not a list`;
  }
  for (const d of s['domains'] as unknown[]) {
    const dom = d as Record<string, unknown>;
    if (typeof dom?.['name'] !== 'string' || !['inactive', 'bound', 'active'].includes(dom['state'] as string)) {
      return `a domain entry is malformed: ${JSON.stringify(d).slice(0, 80)}`;
    }
  }
  if (!(s['domains'] as { name: string }[]).some((d) => d.name === 'primary')) return 'the primary domain is missing';
  return undefined;
}
