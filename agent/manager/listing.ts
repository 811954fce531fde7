/**
 * list-domain until the domain model exists: the primary (control) domain
 * as the machine description defines it.
 */
import { managerMessages } from '../messages.ts';
import type { MachineSpec } from '../model/machine.ts';
import { formatSize } from '../model/sizes.ts';
import { failure, item, success, type Command, type Content } from '../xml/document.ts';

function primaryContent(machine: MachineSpec): Content {
  return {
    id: 'primary',
    sections: [
      {
        items: [
          item('ldom_info', {
            state: 'active',
            flags: '-n-cv-',
            hostid: machine.hostid,
            'failure-policy': 'ignore',
            'cpu-arch': 'native',
          }),
          item('cpu', {}, { AllocationUnits: String(machine.primary.vcpus) }),
          item('memory', {}, { AllocationUnits: formatSize(machine.primary.memory) }),
        ],
      },
    ],
  };
}

export function listDomains(cmd: Command, machine: MachineSpec): void {
  const named = cmd.data.flatMap((d) => d.envelope?.contents.map((c) => c.id) ?? []);
  const unknown = named.filter((n) => n !== 'primary');
  if (unknown.length > 0) {
    for (const d of cmd.data) d.response = failure(...unknown.map(managerMessages.invalidDomain));
    return;
  }
  cmd.data = [{ version: '3.0', envelope: { contents: [primaryContent(machine)], sections: [] }, response: success() }];
}
