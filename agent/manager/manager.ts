/**
 * The manager: authorizes each command of a request and dispatches it to its
 * handler, in order (protocol.md section 2: commands in one document run in
 * order). Handlers answer each object (<data>); completeResponse fills in
 * the command and overall levels.
 */
import type { EventBus, EventClass } from '../events/bus.ts';
import { roleAllows, type Role } from '../auth/users.ts';
import { authMessages, managerMessages } from '../messages.ts';
import type { MachineSpec } from '../model/machine.ts';
import { failure, success, type Command, type LdmDocument } from '../xml/document.ts';
import { completeResponse } from '../xml/respond.ts';
import { REGISTRATIONS } from './actions.ts';
import { listDomains } from './listing.ts';

export interface Principal {
  name: string;
  role: Role;
  /** How the peer proved who it is. */
  via: 'local' | 'password' | 'certificate';
}

/** What the manager knows of the connection a request came on. */
export interface Session {
  principal: Principal;
  /** The event classes this connection registered for; its bus subscription reads this same set. */
  events: Set<EventClass>;
}

export interface ManagerDeps {
  machine: MachineSpec;
  bus: EventBus;
}

type Handler = (cmd: Command, session: Session) => void | Promise<void>;

export class Manager {
  private readonly handlers = new Map<string, Handler>();

  constructor(private readonly deps: ManagerDeps) {
    for (const [action, reg] of Object.entries(REGISTRATIONS)) {
      this.handlers.set(action, (cmd, session) => {
        for (const c of reg!.classes) reg!.register ? session.events.add(c) : session.events.delete(c);
        for (const d of cmd.data) d.response ??= success();
      });
    }
    this.handlers.set('list-domain', (cmd) => listDomains(cmd, this.deps.machine));
  }

  get bus(): EventBus {
    return this.deps.bus;
  }

  /** Run every command of a decoded request; returns the request turned into its response. */
  async execute(doc: LdmDocument, session: Session): Promise<LdmDocument> {
    for (const cmd of doc.commands) {
      if (cmd.problem || cmd.action === null) continue;
      const { principal } = session;
      if (!roleAllows(principal.role, cmd.action)) {
        cmd.problem = authMessages.actionRefused(principal.name, principal.role, cmd.action);
        continue;
      }
      const handler = this.handlers.get(cmd.action);
      if (!handler) {
        cmd.response = failure(managerMessages.notImplemented(cmd.action));
        continue;
      }
      await handler(cmd, session);
    }
    return completeResponse(doc);
  }
}

