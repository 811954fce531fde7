/**
 * `GET /metrics`: Prometheus text through prom-client, on a registry of our
 * own (the global one would mix agents that share a process, as tests do).
 *
 * Gauges are read from the model at scrape time. Migration counters count each
 * finished migration once: the service keeps only the last finished ones, so
 * they are swept on every progress event (a migration ends with one) as well
 * as at scrape time; a WeakSet remembers which were counted without growing.
 * The XML side's figures come through the daemon: the manager's observer of each
 * command (ldm_xml_requests_total, ldm_xml_request_duration_seconds) and the XML
 * server's connection count (ldm_connections).
 */
import type { RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MigrationInfo } from '../migration/stats.ts';
import type { HttpDeps } from './deps.ts';

/** Domain states always reported, so a state with no domain shows 0 rather than vanishing. */
const STATES = ['active', 'bound', 'inactive'];

export interface Metrics {
  registry: Registry;
  handler: RequestHandler;
  close(): void;
}

export interface MetricsOptions {
  /** Bus subscriptions the web app holds for itself (the event stream's, ours): not subscribers anyone asked for. */
  ownSubscriptions?: () => number;
}

export function createMetrics(deps: HttpDeps, options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const { ldm, migrations, bus } = deps;

  new Gauge({
    name: 'ldm_domains',
    help: 'Logical domains on this machine, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const d of ldm.snapshot.domains) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });

  new Gauge({
    name: 'ldm_event_subscribers',
    help: 'Event subscriptions of XML sessions open on the event bus.',
    registers: [registry],
    collect() {
      this.set(Math.max(0, bus.size - (options.ownSubscriptions?.() ?? 0)));
    },
  });

  const total = new Counter({ name: 'ldm_migrations_total', help: 'Migrations that ended, by result.', labelNames: ['result'], registers: [registry] });
  const bytes = new Counter({ name: 'ldm_migration_bytes_total', help: 'Bytes of guest memory sent or received by migrations that ended.', registers: [registry] });
  const downtime = new Histogram({
    name: 'ldm_migration_downtime_seconds',
    help: 'How long the guest was paused, per completed live migration.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'ldm_migration_duration_seconds',
    help: 'Total time of each migration that ended, from its start to its end.',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });

  const counted = new WeakSet<MigrationInfo>();
  const sweep = () => {
    for (const info of migrations.list()) {
      if (!info.finished || counted.has(info)) continue;
      counted.add(info);
      total.inc({ result: info.status });
      bytes.inc(info.transferredBytes);
      duration.observe(info.totalTimeMs / 1000);
      if (info.status === 'completed' && info.downtimeMs > 0) downtime.observe(info.downtimeMs / 1000);
    }
  };
  new Gauge({
    name: 'ldm_migrations_running',
    help: 'Migrations in progress on this agent (either side).',
    registers: [registry],
    collect() {
      this.set(migrations.list().filter((i) => !i.finished).length);
    },
  });
  // Swept on each progress event too, so a migration is counted before the service's bounded list forgets it.
  const sub = bus.subscribe(() => sweep(), new Set(['progress']));

  // The XML interface: each command by action and status, how long it took, the connections open.
  const requests = new Counter({ name: 'ldm_xml_requests_total', help: 'XML commands answered, by action and status.', labelNames: ['action', 'status'], registers: [registry] });
  const requestSeconds = new Histogram({
    name: 'ldm_xml_request_duration_seconds',
    help: 'Time to carry out one XML command, by action.',
    labelNames: ['action'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 10, 60],
    registers: [registry],
  });
  const stopObserving = deps.onRequest?.((action, status, seconds) => {
    requests.inc({ action, status });
    requestSeconds.observe({ action }, seconds);
  });
  if (deps.connections) {
    const connections = deps.connections;
    new Gauge({ name: 'ldm_connections', help: 'Connections open on the XML interface.', registers: [registry], collect() { this.set(connections()); } });
  }

  return {
    registry,
    handler: async (_req, res) => {
      // Before serialising: the counters are written in registration order.
      sweep();
      res.set('Content-Type', registry.contentType).send(await registry.metrics());
    },
    close: () => {
      sub.close();
      stopObserving?.();
    },
  };
}
