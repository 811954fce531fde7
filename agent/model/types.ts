/**
 * The persistent state of the Logical Domains Manager: what administrators
 * asked for (constraints), what is bound to each domain (bindings), and the
 * services the domains provide. Plain JSON-able data: store.ts writes it,
 * ldm.ts changes it, listings read it.
 */

/**
 * Domain states (Oracle's): inactive (constraints only), bound (resources
 * allocated), active (running). start/stop move between bound and active,
 * bind/unbind between inactive and bound.
 */
export type DomainState = 'inactive' | 'bound' | 'active';

export type FailurePolicy = 'ignore' | 'panic' | 'reset' | 'stop';
export type CpuArch = 'native' | 'generic' | 'migration-class1';
export type BootPolicy = 'enforce' | 'none' | 'warning';

/** A block of bound memory: real address (as the guest sees it), physical address, size in bytes. */
export interface MemoryBlock {
  ra: number;
  pa: number;
  size: number;
}

export interface VdiskConfig {
  name: string;
  /** The back end: volume `volume` of virtual disk server `service`. */
  volume: string;
  service: string;
  timeout?: number;
  /** Device id in the guest (`disk@ID`), assigned at add time; disks are numbered apart from networks. */
  id: number;
}

export interface VnetConfig {
  name: string;
  /** The virtual switch it connects to. */
  service: string;
  mac: string;
  pvid?: number;
  vid?: string;
  mode?: string;
  linkprop?: string;
  /** Device id in the guest (`network@ID`), numbered apart from disks. */
  id: number;
}

export interface VdsVolume {
  name: string;
  blockDev: string;
  options: string[];
  mpgroup?: string;
}

export interface VdsConfig {
  name: string;
  /** The domain providing the service. */
  domain: string;
  volumes: VdsVolume[];
}

export interface VswConfig {
  name: string;
  domain: string;
  mac: string;
  netDev?: string;
  mode?: string;
  pvid?: number;
  vid?: string;
  mtu?: number;
  linkprop?: string;
  interVnetLink?: string;
  id: number;
}

export interface VccConfig {
  name: string;
  domain: string;
  minPort: number;
  maxPort: number;
}

/** What is allocated to a bound or active domain. */
export interface Bindings {
  /** Strand ids (core = strand / threadsPerCore). */
  strands: number[];
  memory: MemoryBlock[];
  /** Crypto units by core id. */
  mau: number[];
  /** The console port from the vcc, when the machine has one. */
  consolePort?: number;
  consoleService?: string;
}

/** Changes to the primary that wait for its reboot (delayed reconfiguration). */
export interface DelayedReconf {
  memory?: number;
  /** The physical devices the domain will own after its reboot. */
  io?: string[];
}

/**
 * A domain's part in a migration (agent/model/migrations.ts), saved with the
 * domain database so that a restarted agent knows what to settle or clean up.
 */
export interface MigrationRecord {
  /** `source`: the domain leaves this machine; `target`: it is being received here. */
  role: 'source' | 'target';
  /** The other agent: on the source the target as given (host or host:port, how to reach it again); on the target the source's host name. */
  peer: string;
  /** The migration's id, the same on both machines. */
  id: string;
  /** The orchestration's phase name when last saved (`prepare`, `precopy`, `stop-copy`, `handoff`, ...). */
  phase: string;
  /** Percent done, 0 to 100, never decreasing; saved at phase changes only (the listing shows the live value). */
  progress: number;
  /** Source only: the handoff window was lost (flag `e`); the domain waits to be settled. */
  error?: boolean;
  /**
   * Source only: the agents log in to each other with their certificates (-c), so a
   * restarted agent can reach the target to settle the error state by itself (a
   * password is never saved).
   */
  certificate?: boolean;
  /** ISO 8601 time the record was made. */
  startedAt: string;
}

export interface DomainConfig {
  name: string;
  uuid: string;
  hostid: string;
  mac: string;
  state: DomainState;
  failurePolicy: FailurePolicy;
  /** Master domains (failure-policy applies when one of them fails). */
  master: string[];
  cpuArch: CpuArch;
  perfCounters: string;
  /** `on` or `off` (the 3.x guide's ldom_info key). */
  extendedMapinSpace: 'on' | 'off';
  /** `iov` or empty: enable I/O virtualization on root complexes added to the domain. */
  rcAddPolicy: '' | 'iov';
  bootPolicy: BootPolicy;
  /** Ordered-shutdown priority: 0 for the primary, 1 to 15 for the others. */
  shutdownGroup: number;
  /** Most whole cores the domain may have (`unlimited` or a count, as a string). */
  maxCores: string;
  // Constraints: what was asked.
  vcpus: number;
  /** Whole cores asked with wcore (0: plain strands). */
  wholeCores: number;
  /** Memory in bytes. */
  memory: number;
  mau: number;
  io: string[];
  vdisks: VdiskConfig[];
  vnets: VnetConfig[];
  console: { port?: number; service?: string; group?: string; log?: boolean };
  /** OpenBoot and simulation variables, in insertion order. */
  variables: [string, string][];
  bindings?: Bindings;
  delayedReconf?: DelayedReconf;
  /** Present while the domain takes part in a migration (absent in state files of earlier versions). */
  migration?: MigrationRecord;
  /** Left by state files of earlier versions (one counter for disks and networks); no longer used. */
  nextDeviceId?: number;
}

export interface SpConfig {
  name: string;
  /** JSON of the domains at the time it was saved. */
  saved: string;
}

/** SR-IOV function classes (the machine file's `sriov.type`). */
export type IovClass = 'ethernet' | 'fibrechannel' | 'infiniband';

/**
 * A virtual function created on a physical function (create-vf). It is
 * assigned to a domain by naming it in that domain's `io`, like any device.
 */
export interface VfConfig {
  /** `/SYS/MB/NET0/IOVNET.PF0.VF0`. */
  name: string;
  /** Its physical function, `/SYS/MB/NET0/IOVNET.PF0`. */
  pf: string;
  /** Its number on the physical function (VF0, VF1, ...). */
  index: number;
  /** Ethernet: the primary MAC address, alternate ones, VLANs, MTU. */
  mac?: string;
  altMacs?: string[];
  pvid?: number;
  vid?: string;
  mtu?: number;
  /** Fibre Channel: world-wide names and bandwidth share. */
  portWwn?: string;
  nodeWwn?: string;
  bwPercent?: number;
}

/** Settings of a physical function (set-io); absent until one is set. */
export interface PfConfig {
  name: string;
  unicastSlots?: number;
}

export interface LdmState {
  /** Format version of the state file. */
  version: 1;
  domains: DomainConfig[];
  vds: VdsConfig[];
  vsw: VswConfig[];
  vcc: VccConfig[];
  spconfigs: SpConfig[];
  /** The configuration the SP will boot next (`current` in list-spconfig). */
  nextSpconfig: string;
  /** Next MAC address suffix (Oracle's 00:14:4f range). */
  nextMac: number;
  nextHostid: number;
  /** Virtual functions, in creation order (absent in state files of earlier versions). */
  vfs?: VfConfig[];
  pfs?: PfConfig[];
  /** The PCIe buses with I/O virtualization enabled; absent: as the machine file says. */
  iovBuses?: string[];
}
