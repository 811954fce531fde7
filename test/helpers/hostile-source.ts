/**
 * A hostile migration source in the test process, against a real target agent (a child
 * process, test/helpers/cluster.ts): a model and simulated guest of its own (the
 * agent's Ldm and SimHypervisor, so its offer is one the agent's checks build and its
 * pages are real guest memory), the real login path to the target (LdmClient: STARTTLS,
 * SASL PLAIN, the migration-channel switch), and the channel driven by the test
 * (hostile-peer.ts): frames that lie, a digest that never matches, a source that stops
 * reading or goes silent.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Guest } from '../../agent/hypervisor/hypervisor.ts';
import { SimHypervisor } from '../../agent/hypervisor/simulator.ts';
import { Guests } from '../../agent/manager/guests.ts';
import { buildOffer } from '../../agent/migration/checks.ts';
import { MIGRATION_CHANNEL } from '../../agent/migration/connect.ts';
import type { MigrationOffer } from '../../agent/migration/offer.ts';
import { Ldm } from '../../agent/model/ldm.ts';
import { DEFAULT_MACHINE_FILE, loadMachine } from '../../agent/model/machine.ts';
import { StateStore } from '../../agent/model/store.ts';
import { LdmClient } from '../../agent/xmpp/client.ts';
import { stateDirs } from './agent.ts';
import { ADMIN, type AgentProc } from './cluster.ts';
import { HostilePeer } from './hostile-peer.ts';

type Teardown = { teardown(fn: () => unknown): void };

const M = 2 ** 20;

/** A model of the agent's own on a fresh state directory, with a console concentrator and its hypervisor. */
export async function inProcessModel(t: Teardown, dirs: () => string, name: string, hostid: string, budget = 256 * M) {
  const dir = dirs();
  const file = join(dir, 'machine.json');
  writeFileSync(file, JSON.stringify({ ...DEFAULT_MACHINE_FILE, hostname: name, hostid }));
  mkdirSync(join(dir, 'var'));
  const hypervisor = new SimHypervisor({ memoryBudget: budget });
  const ldm = await Ldm.open(loadMachine(file), new StateStore(join(dir, 'var')), () => {}, new Guests(undefined, hypervisor));
  await ldm.addVcc('primary-vcc0', 'primary', 5000, 5100);
  t.teardown(() => hypervisor.close());
  return { ldm, hypervisor };
}

export interface HostileSource {
  /** The running guest whose pages it sends (suspended: its memory does not change). */
  guest: Guest;
  /** The offer for its domain, as the agent's checks build it. */
  offer(targetName: string): MigrationOffer;
  /** Log in to `target` as admin and switch to the migration channel. */
  connect(target: AgentProc): Promise<HostilePeer>;
}

/** A source machine named `name` with one active domain `domain` (no disks, no networks) of 64 MiB, 1 MiB of it written. */
export async function startHostileSource(t: Teardown, name: string, domain: string): Promise<HostileSource> {
  const dirs = stateDirs(t, `ldm-hostile-source-${name}-`);
  const source = await inProcessModel(t, dirs, name, '0x84e10001');
  await source.ldm.addDomain(domain, {}, { vcpus: 2, memory: 64 * M, variables: [['sim-working-set', '1M'], ['sim-fill', 'random'], ['sim-dirty-rate', '0']] });
  await source.ldm.bindDomain(domain);
  await source.ldm.startDomain(domain);
  const guest = source.hypervisor.guest(domain)!;
  await guest.whenFilled();
  guest.suspend();
  const clients: LdmClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.close().catch(() => {}))));
  return {
    guest,
    offer(targetName) {
      const r = buildOffer(source.ldm, source.hypervisor, domain, targetName, { dryRun: false, force: false });
      if (!r.ok) throw new Error(r.reason);
      return r.offer;
    },
    async connect(target) {
      const client = await LdmClient.connect({
        host: '127.0.0.1',
        port: target.port,
        auth: { kind: 'password', user: ADMIN.user, password: ADMIN.password },
        ca: readFileSync(target.certs.ca, 'utf8'),
        servername: 'localhost',
      });
      clients.push(client);
      const peer = new HostilePeer(await client.openChannel(MIGRATION_CHANNEL));
      t.teardown(() => peer.close());
      return peer;
    },
  };
}
