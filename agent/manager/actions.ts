/**
 * What the manager knows of actions beyond their handlers: the event
 * classes each registration action covers. (The role each action needs is
 * auth/users.ts roleAllows.)
 */
import { EVENT_CLASSES, type EventClass } from '../events/bus.ts';
import type { LdmAction } from '../xml/actions.ts';

/** reg-/unreg- actions and the event classes they cover (protocol.md section 6). */
export const REGISTRATIONS: Partial<Record<LdmAction, { register: boolean; classes: readonly EventClass[] }>> = {
  'reg-domain-events': { register: true, classes: ['domain'] },
  'unreg-domain-events': { register: false, classes: ['domain'] },
  'reg-resource-events': { register: true, classes: ['resource'] },
  'unreg-resource-events': { register: false, classes: ['resource'] },
  'reg-hardware-events': { register: true, classes: ['hardware'] },
  'unreg-hardware-events': { register: false, classes: ['hardware'] },
  'reg-progress-events': { register: true, classes: ['progress'] },
  'unreg-progress-events': { register: false, classes: ['progress'] },
  'reg-all-events': { register: true, classes: EVENT_CLASSES },
  'unreg-all-events': { register: false, classes: EVENT_CLASSES },
};
