/**
 * The budget for resident guest memory. A simulated guest's pages are real memory of
 * the agent (a 4G working set is 4G of RSS), and the machine it simulates may
 * advertise far more than the host has, so all guests together may hold at most
 * `limit` bytes of page storage.
 *
 * Each guest has one account. What it claims is the larger of:
 * - its resident storage (chunks allocated, see memory.ts), and
 * - its reservation: the storage its working set will take once filled, taken when
 *   the guest is created or its workload changes, so that the fill (which runs on a
 *   timer, with no one to answer) never meets the limit half way.
 * A claim that would take the sum past the limit is refused with GUEST_MEMORY_BUDGET,
 * naming the budget; a refused change leaves every account as it was. The fast path
 * (a chunk allocated inside the reservation) is two comparisons.
 */
import { totalmem } from 'node:os';
import { ErrorCodes, LdmError } from '../errors.ts';
import { daemonMessages, hypervisorMessages as msg } from '../messages.ts';
import { formatSize } from '../model/sizes.ts';

/** Default share of the host's memory that guests may hold. */
export const DEFAULT_BUDGET_SHARE = 0.25;
/** ...but never more than this by default (a simulator has no use for more; set it higher explicitly). */
export const DEFAULT_BUDGET_CAP = 8 * 2 ** 30;
/** Budgets are whole MiB (so they print as sizes). */
const MIB = 2 ** 20;

/**
 * The default budget: DEFAULT_BUDGET_SHARE of the host's memory (or of the
 * control group's limit when the process runs under a smaller one), at most
 * DEFAULT_BUDGET_CAP, in whole MiB.
 */
export function defaultMemoryBudget(host = hostMemory()): number {
  return Math.max(MIB, Math.floor(Math.min(host * DEFAULT_BUDGET_SHARE, DEFAULT_BUDGET_CAP) / MIB) * MIB);
}

/** The memory this process may use: the host's, or a smaller control-group limit. */
export function hostMemory(): number {
  const total = totalmem();
  // Node 20 answers 2^64 (or 0) when no limit applies.
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}

/** The start-up line about the budget: its size, and where it comes from. */
export function describeBudget(limit: number, configured: boolean): string {
  const how = configured ? daemonMessages.guestBudgetSet() : daemonMessages.guestBudgetDefault(DEFAULT_BUDGET_SHARE * 100, formatSize(DEFAULT_BUDGET_CAP));
  return daemonMessages.guestBudget(formatSize(limit), how);
}

export class MemoryBudget {
  private claimed = 0;

  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new RangeError(`guest memory budget ${limit}: expected a positive number of bytes`);
  }

  /** Bytes claimed by all guests now. */
  get used(): number {
    return this.claimed;
  }

  account(guest: string): BudgetAccount {
    return new BudgetAccount(this, guest);
  }

  /** Refuse (GUEST_MEMORY_BUDGET) a claim growing from `from` to `to` that would pass the limit. */
  check(guest: string, from: number, to: number): void {
    if (to <= from || this.claimed - from + to <= this.limit) return;
    throw new LdmError(ErrorCodes.GUEST_MEMORY_BUDGET, msg.overBudget(guest, formatSize(to), formatSize(this.claimed - from), formatSize(this.limit)));
  }

  /** Move a claim from `from` to `to` (checked before by check()). */
  move(from: number, to: number): void {
    this.claimed += to - from;
  }
}

/** One guest's share of the budget. */
export class BudgetAccount {
  private resident = 0;
  private reserved = 0;

  constructor(
    private readonly budget: MemoryBudget,
    readonly guest: string,
  ) {}

  /** What this guest counts against the budget. */
  get claim(): number {
    return Math.max(this.resident, this.reserved);
  }

  /** Refuse a reservation of `bytes` that would not fit; changes nothing. */
  checkReserve(bytes: number): void {
    this.budget.check(this.guest, this.claim, Math.max(this.resident, bytes));
  }

  /** Reserve `bytes` for the working set (replacing the previous reservation), or refuse. */
  reserve(bytes: number): void {
    const before = this.claim;
    const after = Math.max(this.resident, bytes);
    this.budget.check(this.guest, before, after);
    this.reserved = bytes;
    this.budget.move(before, after);
  }

  /** Refuse an allocation of `bytes` that would not fit; changes nothing. */
  checkAllocate(bytes: number): void {
    if (bytes > 0) this.budget.check(this.guest, this.claim, Math.max(this.resident + bytes, this.reserved));
  }

  /** Storage of `bytes` is about to be allocated: counted, or refused before anything is allocated. */
  allocate(bytes: number): void {
    const resident = this.resident + bytes;
    if (resident <= this.reserved) {
      this.resident = resident;
      return;
    }
    const before = this.claim;
    const after = Math.max(resident, this.reserved);
    this.budget.check(this.guest, before, after);
    this.resident = resident;
    this.budget.move(before, after);
  }

  /** All storage freed (scrub): the account claims nothing more until it reserves again. */
  releaseAll(): void {
    this.budget.move(this.claim, 0);
    this.resident = 0;
    this.reserved = 0;
  }
}
