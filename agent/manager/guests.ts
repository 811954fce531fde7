/**
 * The guests of active domains, run by the (simulated) hypervisor: created
 * with the domain's bound memory on start-domain, booted to the OS or to the
 * OpenBoot `ok` prompt as `auto-boot?` says, driven by the `sim-*` variables
 * (contract.md "Simulated guests"), scrubbed and destroyed on stop-domain.
 *
 * The hypervisor's memory budget (hypervisor/budget.ts) is checked in check(),
 * before start-domain or a variable change is saved: a working set that would not
 * fit is refused there, with a message naming the budget, and never fails after
 * the change is made. Only at the agent's start (domains that were active) can a
 * guest meet a budget smaller than its working set: it then starts without its
 * working set, with a warning, rather than keep the agent from starting.
 */
import { ErrorCodes, LdmError } from '../errors.ts';
import type { Guest, Hypervisor, RunState } from '../hypervisor/hypervisor.ts';
import { SimHypervisor } from '../hypervisor/simulator.ts';
import { simSettings } from '../hypervisor/variables.ts';
import type { Logger } from '../log.ts';
import { guestMessages } from '../messages.ts';
import { ModelError, type GuestHost } from '../model/ldm.ts';
import type { DomainConfig } from '../model/types.ts';

export type GuestState = RunState;

export class Guests implements GuestHost {
  constructor(
    private readonly log?: Logger,
    readonly hypervisor: Hypervisor = new SimHypervisor(),
  ) {}

  /**
   * The variables must make sense before a change that depends on them is saved, and
   * the working set must fit the memory budget: a running guest's new working set, or
   * a bound domain's (start-domain, or its variables changed meanwhile). The control
   * domain has no guest.
   */
  check(d: DomainConfig): void {
    const { workload } = simSettings(d.variables);
    if (d.memory > 0 && workload.workingSet > d.memory) throw new ModelError(guestMessages.workingSetTooLarge(d.name, workload.workingSet, d.memory));
    const running = this.hypervisor.guest(d.name);
    if ((running !== undefined && running.state !== 'destroyed') || d.state === 'bound') this.hypervisor.admitWorkload(d.name, d.memory, workload);
  }

  start(d: DomainConfig): void {
    const { boot, workload } = simSettings(d.variables);
    let guest: Guest;
    try {
      guest = this.hypervisor.create({ name: d.name, memoryBytes: d.memory, workload });
    } catch (err) {
      if (!(err instanceof LdmError && err.code === ErrorCodes.GUEST_MEMORY_BUDGET)) throw err;
      this.log?.warn(guestMessages.startedWithoutWorkingSet(err.message), { domain: d.name });
      guest = this.hypervisor.create({ name: d.name, memoryBytes: d.memory, workload: { ...workload, workingSet: 0 } });
    }
    guest.start(boot);
  }

  /** `sim-state` moves a running guest; the workload knobs take effect at once. */
  reconfigure(d: DomainConfig): void {
    const guest = this.hypervisor.guest(d.name);
    if (!guest || guest.state !== 'running') return;
    const { boot, workload } = simSettings(d.variables);
    guest.setWorkload(workload);
    const wanted = boot.state ?? 'solaris';
    if (d.variables.some(([k]) => k === 'sim-state') && guest.runState !== wanted) guest.setRunState(wanted);
  }

  async stop(name: string): Promise<void> {
    const guest = this.hypervisor.guest(name);
    if (!guest) return;
    const scrub = await guest.destroy();
    this.log?.info('guest destroyed', { domain: name, scrubbedPages: scrub.pages, scrubMs: Number(scrub.scrubMs.toFixed(2)) });
  }

  /** What list-domain shows of a running guest's workload (sim-workload, sim-filled). */
  workload(name: string): { phase: string; filledBytes: number } | undefined {
    const guest = this.hypervisor.guest(name);
    if (!guest || guest.state === 'destroyed') return undefined;
    const w = guest.workloadStats();
    return { phase: w.phase, filledBytes: w.filledPages * this.hypervisor.pageSize };
  }

  uptime(name: string): number | undefined {
    const guest = this.hypervisor.guest(name);
    if (!guest || guest.state === 'destroyed' || guest.startedAt === null) return undefined;
    return Math.max(0, Math.floor((Date.now() - guest.startedAt) / 1000));
  }

  status(name: string): GuestState | undefined {
    return this.hypervisor.guest(name)?.runState ?? undefined;
  }

  close(): Promise<void> {
    return this.hypervisor.close();
  }
}
