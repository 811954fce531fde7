/**
 * Request documents as a client writes them (3.x style, namespaces declared),
 * from a compact description, for tests that drive the agent.
 */
import { escapeAttr, escapeXml, NAMESPACES } from '../../agent/xml/encode.ts';

const NS = Object.entries(NAMESPACES)
  .map(([p, uri]) => `xmlns:${p}="${uri}"`)
  .join(' ');

export interface ItemSpec {
  type: string;
  props?: Record<string, string>;
  rasd?: Record<string, string>;
}

export function itemXml({ type, props = {}, rasd = {} }: ItemSpec): string {
  return (
    `<Item><rasd:OtherResourceType>${escapeXml(type)}</rasd:OtherResourceType>` +
    Object.entries(rasd).map(([k, v]) => `<rasd:${k}>${escapeXml(v)}</rasd:${k}>`).join('') +
    Object.entries(props).map(([k, v]) => `<gprop:GenericProperty key="${escapeAttr(k)}">${escapeXml(v)}</gprop:GenericProperty>`).join('') +
    `</Item>`
  );
}

const section = (items: ItemSpec[]) =>
  items.length === 0 ? '' : `<Section xsi:type="ovf:VirtualHardwareSection_Type">${items.map(itemXml).join('')}</Section>`;

/** A <data> naming `domain` (a Content) or no domain (a Section under the Envelope), with items. */
export function data(domain: string | null, ...items: ItemSpec[]): string {
  const body = domain === null ? section(items) : `<Content xsi:type="ovf:VirtualSystem_Type" ovf:id="${escapeAttr(domain)}">${section(items)}</Content>`;
  return `<data version="3.0"><Envelope><References/>${body}</Envelope></data>`;
}

/** One request document with one command. */
export function request(action: string, dataXml: string | string[] = '<data version="3.0"/>', options?: string): string {
  const datas = Array.isArray(dataXml) ? dataXml.join('') : dataXml;
  return `<LDM_interface version="1.3" ${NS}><cmd><action>${action}</action>${options ? `<options>${options}</options>` : ''}${datas}</cmd></LDM_interface>`;
}

export const cpu = (n: number, wcore?: number): ItemSpec => ({ type: 'cpu', rasd: { AllocationUnits: String(n) }, ...(wcore ? { props: { wcore: String(wcore) } } : {}) });
export const memory = (size: string): ItemSpec => ({ type: 'memory', rasd: { AllocationUnits: size } });
export const mau = (n: number): ItemSpec => ({ type: 'mau', rasd: { AllocationUnits: String(n) } });
export const variable = (name: string, value?: string): ItemSpec => ({ type: 'var', props: value === undefined ? { name } : { name, value } });
