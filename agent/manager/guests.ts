/**
 * The guests of active domains, run by the (simulated) hypervisor: created
 * with the domain's bound memory on start-domain, booted to the OS or to the
 * OpenBoot `ok` prompt as `auto-boot?` says, driven by the `sim-*` variables
 * (contract.md "Simulated guests"), scrubbed and destroyed on stop-domain.
 */
import type { Hypervisor, RunState } from '../hypervisor/hypervisor.ts';
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

  /** The variables must make sense before a change that depends on them is saved. */
  check(d: DomainConfig): void {
    const { workload } = simSettings(d.variables);
    if (d.memory > 0 && workload.workingSet > d.memory) throw new ModelError(guestMessages.workingSetTooLarge(d.name, workload.workingSet, d.memory));
  }

  start(d: DomainConfig): void {
    const { boot, workload } = simSettings(d.variables);
    const guest = this.hypervisor.create({ name: d.name, memoryBytes: d.memory, workload });
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

  status(name: string): GuestState | undefined {
    return this.hypervisor.guest(name)?.runState ?? undefined;
  }

  close(): Promise<void> {
    return this.hypervisor.close();
  }
}
