/**
 * The simulated hypervisor: creates SimGuests and drives all their workloads from one
 * WorkloadPacer (one timer, one CPU budget per tick for all guests together). All guests
 * share one MemoryBudget (budget.ts): creating a guest reserves its working set.
 */
import { ErrorCodes, LdmError } from '../errors.ts';
import { hypervisorMessages as msg } from '../messages.ts';
import { MemoryBudget, defaultMemoryBudget } from './budget.ts';
import { SimGuest, workingSetStorage } from './guest.ts';
import type { Guest, GuestSpec, Hypervisor, WorkloadConfig } from './hypervisor.ts';
import { MAX_GUEST_PAGES, PAGE_SIZE } from './memory.ts';
import { checkWorkload } from './variables.ts';
import { DEFAULT_WORKLOAD, WorkloadPacer, seedFromName, type PacerOptions } from './workload.ts';

export const MAX_GUEST_BYTES = MAX_GUEST_PAGES * PAGE_SIZE;

export interface SimOptions extends PacerOptions {
  /** Bytes of resident memory all guests together may hold (default: defaultMemoryBudget()). */
  memoryBudget?: number;
}

export class SimHypervisor implements Hypervisor {
  readonly pageSize = PAGE_SIZE;
  readonly pacer: WorkloadPacer;
  readonly memoryBudget: MemoryBudget;
  /** Guests until their scrub has finished (a destroyed guest's name is free again after that). */
  private readonly byName = new Map<string, SimGuest>();

  constructor(options: SimOptions = {}) {
    this.pacer = new WorkloadPacer(options);
    this.memoryBudget = new MemoryBudget(options.memoryBudget ?? defaultMemoryBudget());
  }

  create(spec: GuestSpec): SimGuest {
    const bytes = spec.memoryBytes;
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE !== 0) {
      throw new LdmError(ErrorCodes.GUEST_SIZE, msg.badSize(bytes));
    }
    if (bytes > MAX_GUEST_BYTES) throw new LdmError(ErrorCodes.GUEST_SIZE, msg.tooLarge(bytes, MAX_GUEST_BYTES));
    if (this.byName.has(spec.name)) throw new LdmError(ErrorCodes.GUEST_EXISTS, msg.nameInUse(spec.name));
    const workload = { ...DEFAULT_WORKLOAD, ...spec.workload };
    checkWorkload(workload);
    const account = this.memoryBudget.account(spec.name);
    account.reserve(workingSetStorage(bytes / PAGE_SIZE, workload));
    let guest: SimGuest;
    try {
      guest = new SimGuest(
        { name: spec.name, memoryBytes: bytes, workload, seed: spec.seed ?? seedFromName(spec.name) },
        this.pacer,
        (g) => {
          if (this.byName.get(g.name) === g) this.byName.delete(g.name);
        },
        account,
      );
    } catch (err) {
      account.releaseAll();
      throw err;
    }
    this.byName.set(spec.name, guest);
    return guest;
  }

  admitWorkload(name: string, memoryBytes: number, workload: WorkloadConfig): void {
    const guest = this.byName.get(name);
    if (guest !== undefined && guest.state !== 'destroyed' && guest.account !== undefined) {
      guest.account.checkReserve(workingSetStorage(guest.pages, workload));
      return;
    }
    const pages = Math.floor(memoryBytes / PAGE_SIZE);
    if (pages > 0) this.memoryBudget.check(name, 0, workingSetStorage(pages, workload));
  }

  guest(name: string): SimGuest | undefined {
    return this.byName.get(name);
  }

  guests(): Guest[] {
    return [...this.byName.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.byName.values()].map((g) => g.destroy()));
  }
}
