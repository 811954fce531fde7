/**
 * The real daemon as a child process (`ldm-agent` run from its sources), in a
 * temporary directory, on a free port. Resolves once it has printed its start-up banner.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Node arguments that run `ldm-agent` from the TypeScript sources through tsx, never the
 * bundle in dist/ (which may be older than the sources); test/bins.test.ts runs the bins.
 * tsx is named by its resolved URL, since children may run in another directory.
 */
export const AGENT_ARGS = ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../agent/cli/ldm-agent.ts', import.meta.url))];

export interface Daemon {
  proc: ChildProcessWithoutNullStreams;
  dir: string;
  port: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  /** Resolves when the process has exited: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (no chance to clean up), then the exit. */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startDaemon(t: { teardown(fn: () => unknown): void }, extraArgs: string[] = []): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'ldm-daemon-'));
  const daemon = await spawnDaemon(dir, extraArgs);
  t.teardown(async () => {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return daemon;
}

/**
 * The daemon on the state (`DIR/var`) and certificates (`DIR/certs`) of an
 * existing directory: for restarts on the same state. The directory is the
 * caller's (it is not removed); the daemon is stopped at teardown if it still runs.
 */
export async function startDaemonIn(t: { teardown(fn: () => unknown): void }, dir: string, extraArgs: string[] = []): Promise<Daemon> {
  const daemon = await spawnDaemon(dir, extraArgs);
  t.teardown(() => daemon.stop());
  return daemon;
}

async function spawnDaemon(dir: string, extraArgs: string[]): Promise<Daemon> {
  const proc = spawn(
    process.execPath,
    [...AGENT_ARGS, '--listen', '127.0.0.1:0', '--http', 'off', '--state', join(dir, 'var'), '--certs', join(dir, 'certs'), '--hostname', 'test-host', ...extraArgs],
    { cwd: dir, env: { ...process.env, LDM_LOG_LEVEL: 'info' } },
  );
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  proc.stderr.on('data', (d: Buffer) => (err += d));
  const exitInfo = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const exited = exitInfo.then((e) => e.code);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${out}${err}`)), 20_000);
    const check = () => {
      // `try: ...` is the last line of the start-up banner.
      const m = /XML interface listening on [^\s]+:(\d+)/.exec(out);
      if (m && /^try: /m.test(out)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout.on('data', check);
    proc.once('exit', () => reject(new Error(`daemon exited: ${out}${err}`)));
  });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return exited;
  };
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exitInfo;
  };
  return { proc, dir, port, stdout: () => out, stderr: () => err, stop, exited: exitInfo, kill };
}
