/**
 * The JSON API of the web app: domains, migrations, health, and the one
 * changing call, cancelling a migration. Reads the model and the migration
 * service as the XML listings do; errors answer `{error: {code, message}}`
 * with a stable `LDM_ERR_HTTP_*` code (httpError).
 */
import type { Request, Response, Router as RouterType } from 'express';
import { Router } from 'express';
import { isIP } from 'node:net';
import { ErrorCodes, type ErrorCode } from '../errors.ts';
import { httpMessages } from '../messages.ts';
import { freeMemory, freeStrands } from '../model/allocate.ts';
import { PRIMARY, type Ldm } from '../model/ldm.ts';
import type { DomainConfig } from '../model/types.ts';
import type { MigrationInfo } from '../migration/stats.ts';
import type { HttpDeps } from './deps.ts';

/** Answer an error as JSON with its stable code. */
export function httpError(res: Response, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  res.set(headers).status(status).json({ error: { code, message } });
}

/** A domain as the page and API clients read it: what `ldm list -l` shows, as plain JSON. */
export function domainJson(ldm: Ldm, d: DomainConfig): Record<string, unknown> {
  const active = d.state === 'active';
  const guest = active && d.name !== PRIMARY;
  const view = ldm.migrations.view(d.name);
  return {
    name: d.name,
    state: d.state,
    flags: ldm.flags(d),
    vcpus: d.vcpus,
    wholeCores: d.wholeCores,
    memory: d.memory,
    mau: d.mau,
    // What is bound (a domain that is only defined holds nothing).
    bound: d.bindings ? { strands: d.bindings.strands.length, memory: d.bindings.memory.reduce((n, b) => n + b.size, 0), mau: d.bindings.mau.length } : null,
    softstate: guest ? (ldm.guestStatus(d.name) ?? null) : active ? 'solaris' : null,
    // Seconds since the guest booted; the control domain: since the agent started (as list-domain says).
    uptime: guest ? (ldm.guestUptime(d.name) ?? null) : active ? Math.floor(process.uptime()) : null,
    workload: guest ? (ldm.guestWorkload(d.name) ?? null) : null,
    migration: view ? { role: view.role, peer: view.peer, progress: view.progress, error: view.error } : null,
  };
}

/** The machine's strands and memory, used and free (the page's bars). */
function machineJson(ldm: Ldm): Record<string, unknown> {
  const { machine, snapshot } = ldm;
  const strands = machine.cpu.cores * machine.cpu.threadsPerCore;
  const memory = machine.memory.reduce((n, b) => n + b.size, 0);
  const freeMem = freeMemory(machine, snapshot).reduce((n, b) => n + b.size, 0);
  const free = freeStrands(machine, snapshot).length;
  return {
    hostname: machine.hostname,
    platform: machine.platform,
    strands: { total: strands, used: strands - free, free },
    memory: { total: memory, used: memory - freeMem, free: freeMem },
  };
}

/** A migration with its statistics (agent/migration/stats.ts); times in milliseconds, sizes in bytes. */
export function migrationJson(info: MigrationInfo): Record<string, unknown> {
  return {
    id: info.id,
    domain: info.domain,
    role: info.role,
    peer: info.peer,
    status: info.status,
    phase: info.phase,
    progress: info.progress,
    finished: info.finished,
    dryRun: info.dryRun,
    startTime: new Date(info.startedAt).toISOString(),
    totalTime: Math.round(info.totalTimeMs),
    setupTime: Math.round(info.setupTimeMs),
    downtime: Math.round(info.downtimeMs),
    expectedDowntime: Math.round(info.expectedDowntimeMs),
    iterations: info.iterations,
    transferred: info.transferredBytes,
    remaining: info.remainingBytes,
    total: info.totalBytes,
    zeroPages: info.zeroPages,
    normalPages: info.normalPages,
    dirtyPagesRate: Math.round(info.dirtyPagesRate),
    mbps: Number(info.mbps.toFixed(1)),
    throttlePercentage: info.throttlePercentage,
    digest: info.digest || null,
    error: info.error || null,
  };
}

/** Failed Basic logins per address: a small bounded map (the XML side's throttle, in miniature). */
export class LoginLimiter {
  private readonly failures = new Map<string, { count: number; since: number }>();
  constructor(
    private readonly maxFailures = 5,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 1024,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait before the next try, or 0 when the address may try. */
  retryAfter(address: string): number {
    const f = this.failures.get(address);
    if (!f) return 0;
    const left = f.since + this.windowMs - this.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return f.count >= this.maxFailures ? Math.ceil(left / 1000) : 0;
  }

  fail(address: string): void {
    const f = this.failures.get(address);
    if (f && f.since + this.windowMs > this.now()) f.count++;
    else {
      this.failures.delete(address);
      // Full: the oldest entry goes (Map keeps insertion order), so a flood of addresses cannot grow it.
      if (this.failures.size >= this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(address, { count: 1, since: this.now() });
    }
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }
}

/** Loopback: 127.0.0.0/8, ::1, and IPv4-mapped loopback. */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(a) === 4) return a.startsWith('127.');
  return a === '::1';
}

/** `Authorization: Basic ...` split into name and password, or null. */
function basicCredentials(header: string | undefined): { name: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? null : { name: text.slice(0, colon), password: text.slice(colon + 1) };
}

export interface ApiOptions {
  /** HTTPS: Basic credentials are safe from any address. */
  tls: boolean;
  limiter?: LoginLimiter;
}

export function apiRoutes(deps: HttpDeps, options: ApiOptions): RouterType {
  const router = Router();
  const limiter = options.limiter ?? new LoginLimiter();
  const { ldm, migrations } = deps;

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', hostname: ldm.machine.hostname, uptime: Math.floor(process.uptime()) });
  });

  router.get('/api/machine', (_req, res) => {
    res.json(machineJson(ldm));
  });

  router.get('/api/domains', (_req, res) => {
    res.json({ machine: machineJson(ldm), domains: ldm.snapshot.domains.map((d) => domainJson(ldm, d)) });
  });

  router.get('/api/domains/:name', (req, res) => {
    const d = ldm.domain(req.params.name);
    if (!d) return httpError(res, 404, ErrorCodes.HTTP_NOT_FOUND, httpMessages.noSuchDomain(req.params.name));
    res.json(domainJson(ldm, d));
  });

  router.get('/api/migrations', (_req, res) => {
    res.json({ migrations: migrations.list().map(migrationJson) });
  });

  router.post('/api/migrations/:domain/cancel', async (req: Request<{ domain: string }>, res) => {
    const address = req.socket.remoteAddress ?? '';
    // Refused before the credentials are read: over plain HTTP off the machine they were already seen on the wire, but we do not use them.
    if (!options.tls && !isLoopback(req.socket.localAddress ?? '')) return httpError(res, 403, ErrorCodes.HTTP_INSECURE, httpMessages.insecure);
    const wait = limiter.retryAfter(address);
    if (wait > 0) return httpError(res, 429, ErrorCodes.HTTP_TOO_MANY_LOGINS, httpMessages.tooManyLogins(wait), { 'Retry-After': String(wait) });
    const creds = basicCredentials(req.get('authorization'));
    const user = creds ? await deps.users.verify(creds.name, creds.password) : null;
    if (!user) {
      if (creds) limiter.fail(address);
      return httpError(res, 401, ErrorCodes.HTTP_UNAUTHORIZED, httpMessages.unauthorized, { 'WWW-Authenticate': 'Basic realm="ldm-agent", charset="UTF-8"' });
    }
    limiter.succeed(address);
    if (user.role !== 'write') return httpError(res, 403, ErrorCodes.HTTP_FORBIDDEN, httpMessages.forbidden(user.name));
    const name = req.params.domain;
    if (!ldm.domain(name) && !migrations.list().some((i) => i.domain === name && !i.finished)) {
      return httpError(res, 404, ErrorCodes.HTTP_NOT_FOUND, httpMessages.noSuchDomain(name));
    }
    deps.log.info('migration cancel requested over HTTP', { domain: name, user: user.name });
    const outcome = await migrations.cancel(name);
    if (!outcome.ok) return httpError(res, 409, ErrorCodes.HTTP_CONFLICT, outcome.message);
    res.json({ cancelled: name });
  });

  return router;
}
