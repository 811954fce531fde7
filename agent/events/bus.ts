/**
 * The one event bus (protocol.md section 6). Producers publish typed
 * events; each is rendered to its LDM_event text at most once, however
 * many subscribers receive it. Subscribers filter by class.
 */
import type { Envelope } from '../xml/document.ts';
import { encodeDocument } from '../xml/encode.ts';

export const EVENT_CLASSES = ['domain', 'resource', 'hardware', 'progress'] as const;
export type EventClass = (typeof EVENT_CLASSES)[number];

/** Version of the LDM_event documents we emit (protocol.md section 6). */
export const EVENT_VERSION = '1.1';

export class LdmEvent {
  private rendered: string | undefined;
  constructor(
    readonly eventClass: EventClass,
    /** What happened, in event words: `add-domain`, `add-crypto`, `migrate-domain`, ... */
    readonly action: string,
    readonly envelope: Envelope,
  ) {}

  /** The LDM_event document, indented like responses (rendered once, whoever receives it). */
  text(): string {
    this.rendered ??= encodeDocument(
      {
        root: 'LDM_event',
        version: EVENT_VERSION,
        commands: [{ action: this.action, options: [], arguments: [], data: [{ version: '3.0', envelope: this.envelope }] }],
      },
    );
    return this.rendered;
  }
}

export type EventListener = (event: LdmEvent) => void;

export interface Subscription {
  readonly classes: Set<EventClass>;
  close(): void;
}

export class EventBus {
  private readonly subscribers = new Set<{ classes: Set<EventClass>; listener: EventListener }>();

  /** Listen for events of the given classes; the set may be changed later (reg-/unreg-). */
  subscribe(listener: EventListener, classes: Set<EventClass> = new Set()): Subscription {
    const entry = { classes, listener };
    this.subscribers.add(entry);
    return { classes, close: () => this.subscribers.delete(entry) };
  }

  publish(event: LdmEvent): void {
    for (const s of this.subscribers) {
      if (!s.classes.has(event.eventClass)) continue;
      try {
        s.listener(event);
      } catch {
        // A failing subscriber (a socket that just died) must not keep the event from the others.
      }
    }
  }

  get size(): number {
    return this.subscribers.size;
  }
}
