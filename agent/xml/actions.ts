/**
 * The action vocabulary of the XML interface (protocol.md section 4 and 6).
 * The XML interface takes full action names only, never CLI aliases.
 * Later releases' actions the agent does not model (virtual SAN and HBA,
 * VM API, resource groups, network statistics, dependencies) are known too:
 * they are answered "not supported on this platform", not "unknown action".
 */
export const LDM_ACTIONS = [
  // listings
  'list-bindings', 'list-services', 'list-constraints', 'list-devices', 'list-domain',
  'list-spconfig', 'list-variable',
  // domains
  'add-domain', 'remove-domain', 'set-domain', 'start-domain', 'stop-domain',
  'bind-domain', 'unbind-domain',
  // resources
  'add-io', 'remove-io', 'add-mau', 'set-mau', 'remove-mau',
  'add-memory', 'set-memory', 'remove-memory', 'remove-reconf',
  'add-spconfig', 'set-spconfig', 'remove-spconfig',
  'add-variable', 'set-variable', 'remove-variable',
  'add-vconscon', 'set-vconscon', 'remove-vconscon', 'set-vconsole',
  'add-vcpu', 'set-vcpu', 'remove-vcpu',
  'add-vdisk', 'remove-vdisk', 'add-vdiskserver', 'remove-vdiskserver',
  'add-vdiskserverdevice', 'remove-vdiskserverdevice',
  'add-vnet', 'set-vnet', 'remove-vnet', 'add-vswitch', 'set-vswitch', 'remove-vswitch',
  'add-vdpcc', 'remove-vdpcc', 'add-vdpcs', 'remove-vdpcs',
  // SR-IOV and the physical I/O listing (3.2 examples, 3.5 list-io)
  'set-io', 'create-vf', 'destroy-vf', 'list-io',
  // 3.4 and 3.5 actions the agent does not model
  'add-vhba', 'set-vhba', 'remove-vhba', 'rescan-vhba', 'list-hba',
  'add-vsan', 'remove-vsan',
  'list-vmapi', 'set-vmapi', 'remove-vmapi',
  'list-rsrc-group', 'list-dependencies', 'list-netdev', 'list-netstat',
  // operations
  'migrate-domain', 'cancel-operation',
  // the agents' migrations with their statistics (ours: QEMU's query-migrate as a listing)
  'list-migrations',
  // event registration (reg-/unreg-progress-events is our addition, protocol.md section 6)
  'reg-domain-events', 'unreg-domain-events', 'reg-resource-events', 'unreg-resource-events',
  'reg-hardware-events', 'unreg-hardware-events', 'reg-progress-events', 'unreg-progress-events',
  'reg-all-events', 'unreg-all-events',
] as const;

export type LdmAction = (typeof LDM_ACTIONS)[number];

const known: ReadonlySet<string> = new Set(LDM_ACTIONS);

export function isLdmAction(name: string): name is LdmAction {
  return known.has(name);
}
