/**
 * The simulated guest's knobs are ordinary domain variables (contract.md "Simulated
 * guests"). The hypervisor is handed their values; this module reads them into
 * BootOptions and a WorkloadConfig, with typed errors (GUEST_VARIABLE) naming the
 * variable. Sizes use the agent's K/M/G/T notation (model/sizes.ts, a pure leaf
 * module); a dirty rate may be written `8M` or `8M/s`.
 *
 * | variable          | values                       | default  |
 * |-------------------|------------------------------|----------|
 * | `auto-boot?`      | `true` / `false`             | `true`   |
 * | `sim-state`       | `solaris` / `openboot` / `kmdb` | `solaris` |
 * | `sim-os`          | `s10u8`, `s10u9`, `s11`, `s11.4`... | `s11` |
 * | `sim-working-set` | size                          | `64M`    |
 * | `sim-dirty-rate`  | bytes/s                       | `0`      |
 * | `sim-fill`        | `zero` / `text` / `random`    | `text` (our choice: an OS's data compresses) |
 */
import { ErrorCodes, LdmError } from '../errors.ts';
import { hypervisorMessages as msg } from '../messages.ts';
import { parseSize } from '../model/sizes.ts';
import { FILL_KINDS, RUN_STATES, type BootOptions, type RunState } from './hypervisor.ts';
import { DEFAULT_WORKLOAD, type FillKind, type WorkloadConfig } from './workload.ts';

export const SIM_VARIABLES = ['auto-boot?', 'sim-state', 'sim-os', 'sim-working-set', 'sim-dirty-rate', 'sim-fill'] as const;
export const DEFAULT_OS = 's11';

/** Domain variables as the model keeps them (pairs, a Map, or a plain object). */
export type Variables = Iterable<readonly [string, string]> | Readonly<Record<string, string>>;

function lookup(vars: Variables): (name: string) => string | undefined {
  if (Symbol.iterator in vars) {
    const map = new Map<string, string>();
    for (const [k, v] of vars as Iterable<readonly [string, string]>) map.set(k, v);
    return (name) => map.get(name);
  }
  const record = vars as Readonly<Record<string, string>>;
  return (name) => (Object.hasOwn(record, name) ? record[name] : undefined);
}

const bad = (name: string, value: string, expected: string) => new LdmError(ErrorCodes.GUEST_VARIABLE, msg.badVariable(name, value, expected));

export function parseAutoBoot(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw bad('auto-boot?', value, 'true or false');
}

export function parseRunState(value: string): RunState {
  const v = value.trim().toLowerCase();
  if ((RUN_STATES as readonly string[]).includes(v)) return v as RunState;
  throw bad('sim-state', value, RUN_STATES.join(', '));
}

export function parseFill(value: string): FillKind {
  const v = value.trim().toLowerCase();
  if ((FILL_KINDS as readonly string[]).includes(v)) return v as FillKind;
  throw bad('sim-fill', value, FILL_KINDS.join(', '));
}

const OS_PATTERN = /^s(\d{1,2})(?:u(\d{1,2}))?(?:\.(\d{1,2}))?$/;

/** A Solaris release as `sN`, `sNuU` or `sN.M` (s10u9 = Solaris 10 9/10, s11.4). */
export function parseOs(value: string): string {
  const v = value.trim().toLowerCase();
  const m = OS_PATTERN.exec(v);
  if (!m || Number(m[1]) < 8) throw bad('sim-os', value, 'a Solaris release such as s10u9, s11 or s11.4');
  return v;
}

/** Live migration needs Solaris 10 9/10 (s10u9) or later; older releases migrate cold only. */
export function liveMigrationSupported(os: string): boolean {
  const m = OS_PATTERN.exec(os.trim().toLowerCase());
  if (!m) return false;
  const major = Number(m[1]);
  return major > 10 || (major === 10 && Number(m[2] ?? 0) >= 9);
}

function parseBytes(name: string, value: string): number {
  const v = name === 'sim-dirty-rate' ? value.trim().replace(/\/s$/i, '') : value;
  const bytes = parseSize(v);
  if (bytes === null) throw bad(name, value, name === 'sim-dirty-rate' ? 'bytes per second such as 0, 512K or 8M' : 'a size such as 64M or 2G');
  return bytes;
}

/** Boot options and workload from a domain's variables; absent ones take their defaults. */
export function simSettings(vars: Variables): { boot: BootOptions; workload: WorkloadConfig } {
  const get = lookup(vars);
  const autoBoot = get('auto-boot?');
  const state = get('sim-state');
  const os = get('sim-os');
  const ws = get('sim-working-set');
  const rate = get('sim-dirty-rate');
  const fill = get('sim-fill');
  return {
    boot: {
      autoBoot: autoBoot === undefined ? true : parseAutoBoot(autoBoot),
      state: state === undefined ? 'solaris' : parseRunState(state),
      os: os === undefined ? DEFAULT_OS : parseOs(os),
    },
    workload: {
      workingSet: ws === undefined ? DEFAULT_WORKLOAD.workingSet : parseBytes('sim-working-set', ws),
      dirtyRate: rate === undefined ? DEFAULT_WORKLOAD.dirtyRate : parseBytes('sim-dirty-rate', rate),
      fill: fill === undefined ? DEFAULT_WORKLOAD.fill : parseFill(fill),
    },
  };
}

/** Refuse a workload the simulator cannot run (GUEST_WORKLOAD). */
export function checkWorkload(config: WorkloadConfig): void {
  if (!Number.isSafeInteger(config.workingSet) || config.workingSet < 0) {
    throw new LdmError(ErrorCodes.GUEST_WORKLOAD, msg.badWorkload('working set', String(config.workingSet)));
  }
  if (typeof config.dirtyRate !== 'number' || !Number.isFinite(config.dirtyRate) || config.dirtyRate < 0) {
    throw new LdmError(ErrorCodes.GUEST_WORKLOAD, msg.badWorkload('dirty rate', String(config.dirtyRate)));
  }
  if (!(FILL_KINDS as readonly string[]).includes(config.fill)) {
    throw new LdmError(ErrorCodes.GUEST_WORKLOAD, msg.badWorkload('fill', String(config.fill)));
  }
}
