/**
 * What the model announces, as LDM events (protocol.md section 6): a domain
 * event carries the domain's Content; a resource event also an item naming
 * the resource; a hardware event a Section describing the SP configuration.
 */
import { LdmEvent } from '../events/bus.ts';
import type { ModelEvent } from '../model/ldm.ts';
import { item } from '../xml/document.ts';

export function toLdmEvent(ev: ModelEvent): LdmEvent {
  switch (ev.class) {
    case 'domain':
      return new LdmEvent('domain', ev.action, { contents: [{ id: ev.domain, sections: [] }], sections: [] });
    case 'resource':
      return new LdmEvent('resource', ev.action, {
        contents: [
          {
            id: ev.domain,
            sections: [{ type: 'ResourceAllocationSection_Type', items: [item(ev.type, ev.props, ev.units !== undefined ? { AllocationUnits: ev.units } : {})] }],
          },
        ],
        sections: [],
      });
    case 'hardware':
      return new LdmEvent('hardware', ev.action, {
        contents: [],
        sections: [{ type: 'ResourceAllocationSection_Type', items: [item('spconfig', { spconfig_name: ev.spconfig })] }],
      });
  }
}
