/**
 * The simulated hypervisor: creates SimGuests and drives all their workloads from one
 * WorkloadPacer (one timer, one CPU budget per tick for all guests together).
 */
import { ErrorCodes, LdmError } from '../errors.ts';
import { hypervisorMessages as msg } from '../messages.ts';
import { SimGuest } from './guest.ts';
import type { Guest, GuestSpec, Hypervisor } from './hypervisor.ts';
import { MAX_GUEST_PAGES, PAGE_SIZE } from './memory.ts';
import { checkWorkload } from './variables.ts';
import { DEFAULT_WORKLOAD, WorkloadPacer, seedFromName, type PacerOptions } from './workload.ts';

export const MAX_GUEST_BYTES = MAX_GUEST_PAGES * PAGE_SIZE;

export class SimHypervisor implements Hypervisor {
  readonly pageSize = PAGE_SIZE;
  readonly pacer: WorkloadPacer;
  /** Guests until their scrub has finished (a destroyed guest's name is free again after that). */
  private readonly byName = new Map<string, SimGuest>();

  constructor(options: PacerOptions = {}) {
    this.pacer = new WorkloadPacer(options);
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
    const guest = new SimGuest(
      { name: spec.name, memoryBytes: bytes, workload, seed: spec.seed ?? seedFromName(spec.name) },
      this.pacer,
      (g) => {
        if (this.byName.get(g.name) === g) this.byName.delete(g.name);
      },
    );
    this.byName.set(spec.name, guest);
    return guest;
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
