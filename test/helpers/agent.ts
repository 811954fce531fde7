/**
 * An agent in the test process, on real sockets (TCP with TLS, and its Unix
 * socket), with its own temporary state and certificate directories.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type AgentConfig } from '../../agent/config.ts';
import { startAgent, type RunningAgent, type ServiceTuning } from '../../agent/daemon.ts';
import { createLogger, type Logger } from '../../agent/log.ts';
import type { Role } from '../../agent/auth/users.ts';

export interface TestAgent extends RunningAgent {
  dir: string;
  port: number;
  /** Lines the agent logged (to check that, for example, no secret is logged). */
  logLines: string[];
}

export interface TestAgentOptions {
  localTcp?: boolean;
  tuning?: ServiceTuning;
  users?: [name: string, role: Role, password: string][];
  /** Reuse a certificate directory (key generation is the slow part of a start). */
  certs?: string;
}

export async function startTestAgent(
  t: { teardown(fn: () => unknown): void },
  options: TestAgentOptions = {},
): Promise<TestAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-agent-test-'));
  const config: AgentConfig = {
    ...DEFAULT_CONFIG,
    listen: { host: '127.0.0.1', port: 0 },
    http: null,
    state: join(dir, 'var'),
    certs: options.certs ?? join(dir, 'certs'),
    hostname: 'test-host',
    localTcp: options.localTcp ?? false,
  };
  const logLines: string[] = [];
  const log: Logger = createLogger('debug', 'ldm-agent', (line) => logLines.push(line));
  const agent = await startAgent(config, () => {}, log, options.tuning);
  for (const [name, role, password] of options.users ?? []) await agent.users.add(name, role, password);
  t.teardown(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { ...agent, dir, port: agent.address.port, logLines };
}

/** A maker of fresh state directories (mode 0700) under one temporary root, removed at teardown. */
export function stateDirs(t: { teardown(fn: () => unknown): void }, prefix: string): () => string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  let count = 0;
  return () => {
    const dir = join(root, `state-${++count}`);
    mkdirSync(dir, { mode: 0o700 });
    return dir;
  };
}
