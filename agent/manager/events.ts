/**
 * What the model announces, as LDM events (protocol.md section 6): a domain
 * event carries the domain's Content; a resource event also an item naming
 * the resource; a hardware event a Section describing the SP configuration;
 * a migration progress event the domain's Content with an ldom_info item
 * (progress `NN%`, status ongoing/failed/done, source: the reporting host).
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
    case 'progress':
      // Announced as the migrate-domain action; a progress class subscriber (reg-progress-events, reg-all-events) gets it.
      return new LdmEvent('progress', 'migrate-domain', {
        contents: [
          {
            id: ev.domain,
            sections: [{ type: 'ResourceAllocationSection_Type', items: [item('ldom_info', { progress: `${ev.progress}%`, status: ev.status, source: ev.source })] }],
          },
        ],
        sections: [],
      });
  }
}
