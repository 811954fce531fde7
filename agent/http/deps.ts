/**
 * What the web app reads and calls (the daemon hands it in): the model, the
 * migrations, the event bus, the users (HTTP Basic), the log. Arrows point down:
 * http/ reads model/, migration/, events/; nothing there knows of http/.
 */
import type { UserStore } from '../auth/users.ts';
import type { EventBus } from '../events/bus.ts';
import type { Logger } from '../log.ts';
import type { MigrationService } from '../migration/service.ts';
import type { Ldm } from '../model/ldm.ts';

export interface HttpDeps {
  ldm: Ldm;
  migrations: MigrationService;
  bus: EventBus;
  users: UserStore;
  log: Logger;
  /** Every XML command once answered (the manager's observer); returns the way to stop listening. */
  onRequest?: (listener: (action: string, status: 'success' | 'failure', seconds: number) => void) => () => void;
  /** Connections open on the XML interface now. */
  connections?: () => number;
}
