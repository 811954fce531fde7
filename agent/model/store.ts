/**
 * Persistence of the domain database: one JSON file, `STATE/domains.json`,
 * replaced atomically and durably (temporary file, fsync, rename, fsync of
 * the directory) before a change is acknowledged. A kill at any moment leaves
 * the old or the new file, never a mix. A file that cannot be read as our
 * state stops the agent with a message naming it: it is never reset. The
 * same check runs before every write (`encode`), so a state the loader would
 * reject is refused instead of saved.
 */
import { readdir, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.ts';
import { ErrorCodes, LdmError } from '../errors.ts';
import { modelMessages, refusalMessages } from '../messages.ts';
import { MAX_STATE_BYTES } from './limits.ts';
import type { LdmState } from './types.ts';

export const STATE_FILE = 'domains.json';

export class StateStore {
  readonly file: string;
  /** Bytes of the file as last loaded or saved: a state already over MAX_STATE_BYTES may still shrink. */
  private savedBytes = 0;

  constructor(stateDir: string) {
    this.file = join(stateDir, STATE_FILE);
  }

  /** The saved state, or undefined on the very first start (no file yet). */
  async load(): Promise<LdmState | undefined> {
    await this.removeStaleTemporaries();
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
    const problem = stateProblem(json);
    if (problem) throw new LdmError(ErrorCodes.STATE_DAMAGED, modelMessages.stateDamaged(this.file, problem));
    this.savedBytes = Buffer.byteLength(text);
    return json as LdmState;
  }

  /**
   * A write killed before its rename leaves its temporary file; it never became
   * the state, so it is removed (only at start, when no write of ours is under way).
   */
  private async removeStaleTemporaries(): Promise<void> {
    const dir = dirname(this.file);
    const prefix = `.${basename(this.file)}.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(prefix) && name.endsWith('.tmp')) await unlink(join(dir, name)).catch(() => {});
    }
  }

  /**
   * The file's text for `state`; refused (LDM_ERR_STATE_INVALID) when load()
   * would reject it, and (LDM_ERR_STATE_TOO_LARGE) when it would grow past
   * MAX_STATE_BYTES. Nothing is written either way.
   */
  encode(state: LdmState): string {
    const problem = stateProblem(state);
    if (problem) throw new LdmError(ErrorCodes.STATE_INVALID, refusalMessages.stateInvalid(problem));
    const text = JSON.stringify(state, null, 1) + '\n';
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_STATE_BYTES && bytes > this.savedBytes) throw new LdmError(ErrorCodes.STATE_TOO_LARGE, refusalMessages.stateTooLarge(bytes, MAX_STATE_BYTES));
    return text;
  }

  /** Write `state` (as `text`, when the caller encoded it already). */
  async save(state: LdmState, text: string = this.encode(state)): Promise<void> {
    await writeFileAtomic(this.file, text, { mode: 0o600 });
    this.savedBytes = Buffer.byteLength(text);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isString = (v: unknown) => typeof v === 'string';
const listOf = (v: unknown, ok: (x: unknown) => boolean) => Array.isArray(v) && v.every(ok);

/** What is wrong with one domain entry, if anything. */
function domainProblem(d: unknown): string | undefined {
  if (!isObject(d) || !isString(d['name'])) return 'has no name';
  const name = d['name'] as string;
  const fields: [string, boolean][] = [
    ['state', ['inactive', 'bound', 'active'].includes(d['state'] as string)],
    ['uuid', isString(d['uuid'])],
    ['hostid', isString(d['hostid'])],
    ['mac', isString(d['mac'])],
    ['failurePolicy', isString(d['failurePolicy'])],
    ['cpuArch', isString(d['cpuArch'])],
    ['perfCounters', isString(d['perfCounters'])],
    ['master', listOf(d['master'], isString)],
    ['vcpus', isInt(d['vcpus'])],
    ['wholeCores', isInt(d['wholeCores'])],
    ['memory', isInt(d['memory'])],
    ['mau', isInt(d['mau'])],
    // Written by earlier versions only (one counter for disks and networks).
    ['nextDeviceId', d['nextDeviceId'] === undefined || isInt(d['nextDeviceId'])],
    ['io', listOf(d['io'], isString)],
    ['vdisks', listOf(d['vdisks'], (v) => isObject(v) && isString(v['name']) && isString(v['volume']) && isString(v['service']))],
    ['vnets', listOf(d['vnets'], (v) => isObject(v) && isString(v['name']) && isString(v['service']) && isString(v['mac']))],
    ['console', isObject(d['console'])],
    ['variables', listOf(d['variables'], (v) => Array.isArray(v) && v.length === 2 && isString(v[0]) && isString(v[1]))],
    // Domain properties later versions added (agent/model/properties.ts): absent in older files, filled in at load.
    ['extendedMapinSpace', d['extendedMapinSpace'] === undefined || isString(d['extendedMapinSpace'])],
    ['rcAddPolicy', d['rcAddPolicy'] === undefined || isString(d['rcAddPolicy'])],
    ['bootPolicy', d['bootPolicy'] === undefined || isString(d['bootPolicy'])],
    ['shutdownGroup', d['shutdownGroup'] === undefined || isInt(d['shutdownGroup'])],
    ['maxCores', d['maxCores'] === undefined || isString(d['maxCores'])],
  ];
  const bad = fields.find(([, ok]) => !ok);
  if (bad) return `domain ${name}: field ${bad[0]} is missing or malformed`;
  const b = d['bindings'];
  if ((d['state'] === 'inactive') !== (b === undefined)) return `domain ${name}: bindings do not match its state ${d['state'] as string}`;
  const r = d['delayedReconf'];
  if (r !== undefined) {
    const okReconf = isObject(r) && (r['memory'] === undefined || isInt(r['memory'])) && (r['io'] === undefined || listOf(r['io'], isString));
    if (!okReconf) return `domain ${name}: its delayed reconfiguration is malformed`;
  }
  const problem = migrationProblem(d['migration'], d['state'] as string);
  if (problem) return `domain ${name}: ${problem}`;
  if (b !== undefined) {
    const okBindings =
      isObject(b) &&
      listOf(b['strands'], isInt) &&
      listOf(b['mau'], isInt) &&
      listOf(b['memory'], (m) => isObject(m) && isInt(m['ra']) && isInt(m['pa']) && isInt(m['size']));
    if (!okBindings) return `domain ${name}: its bindings are malformed`;
  }
  return undefined;
}

/**
 * A domain's migration record (types.ts MigrationRecord), absent in files of
 * earlier versions. A target is never active while it is being received: its
 * guest runs only once completeTarget() has cleared the record.
 */
function migrationProblem(r: unknown, state: string): string | undefined {
  if (r === undefined) return undefined;
  const ok =
    isObject(r) &&
    (r['role'] === 'source' || r['role'] === 'target') &&
    isString(r['peer']) &&
    isString(r['id']) &&
    isString(r['phase']) &&
    isInt(r['progress']) &&
    (r['progress'] as number) <= 100 &&
    (r['error'] === undefined || typeof r['error'] === 'boolean') &&
    (r['certificate'] === undefined || typeof r['certificate'] === 'boolean') &&
    isString(r['startedAt']);
  if (!ok) return 'its migration record is malformed';
  if (r['role'] === 'target' && (r['error'] !== undefined || state === 'active')) return 'its migration record (target) does not match its state';
  return undefined;
}

/**
 * What would make the loader refuse a state, if anything: a structural check,
 * enough that a loaded state cannot crash the agent later. load() runs it on
 * the file, encode() on every new state before it is written.
 */
export function stateProblem(json: unknown): string | undefined {
  if (!isObject(json)) return 'not a JSON object';
  const s = json;
  if (s['version'] !== 1) return `unknown format version ${JSON.stringify(s['version'])}`;
  for (const key of ['domains', 'vds', 'vsw', 'vcc', 'spconfigs']) {
    if (!Array.isArray(s[key])) return `"${key}" is not a list`;
  }
  for (const key of ['nextMac', 'nextHostid']) if (!isInt(s[key])) return `"${key}" is not a number`;
  // Lists that later versions added: absent in older files.
  for (const key of ['vfs', 'pfs', 'iovBuses']) if (s[key] !== undefined && !Array.isArray(s[key])) return `"${key}" is not a list`;
  const okVf = (v: unknown) =>
    isObject(v) && isString(v['name']) && isString(v['pf']) && isInt(v['index']) && (v['mac'] === undefined || isString(v['mac'])) && (v['altMacs'] === undefined || listOf(v['altMacs'], isString));
  if (s['vfs'] !== undefined && !listOf(s['vfs'], okVf)) return 'a virtual function entry (vfs) is malformed';
  if (s['pfs'] !== undefined && !listOf(s['pfs'], (p) => isObject(p) && isString(p['name']))) return 'a physical function entry (pfs) is malformed';
  if (s['iovBuses'] !== undefined && !listOf(s['iovBuses'], isString)) return '"iovBuses" holds something other than bus names';
  if (!isString(s['nextSpconfig'])) return '"nextSpconfig" is not a string';
  for (const d of s['domains'] as unknown[]) {
    const problem = domainProblem(d);
    if (problem) return problem;
  }
  const names = (s['domains'] as { name: string }[]).map((d) => d.name);
  if (new Set(names).size !== names.length) return 'a domain name appears twice';
  if (!names.includes('primary')) return 'the primary domain is missing';
  const services: [string, (x: Record<string, unknown>) => boolean][] = [
    ['vds', (x) => listOf(x['volumes'], (v) => isObject(v) && isString(v['name']) && isString(v['blockDev']) && listOf(v['options'], isString))],
    ['vsw', (x) => isString(x['mac'])],
    ['vcc', (x) => isInt(x['minPort']) && isInt(x['maxPort'])],
  ];
  for (const [key, ok] of services) {
    for (const x of s[key] as unknown[]) {
      if (!isObject(x) || !isString(x['name']) || !isString(x['domain']) || !ok(x)) return `a ${key} entry is malformed: ${JSON.stringify(x).slice(0, 80)}`;
    }
  }
  if (!listOf(s['spconfigs'], (c) => isObject(c) && isString(c['name']) && isString(c['saved']))) return 'an spconfig entry is malformed';
  return undefined;
}
