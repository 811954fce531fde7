/**
 * The `ldm` executable as a user runs it: a child process on the TypeScript
 * sources (through tsx, like AGENT_ARGS), with its exit status and its two
 * output streams once it has ended.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const LDM_ARGS = ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../agent/cli/ldm.ts', import.meta.url))];

export interface LdmRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface LdmRunOptions {
  /** Added to the test process's environment (e.g. LDM_AGENT_STATE). */
  env?: Record<string, string>;
  /** Written to stdin, which is then closed (stdin is closed at once without it). */
  input?: string;
  /** Killed (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
}

export function runLdm(args: string[], opts: LdmRunOptions = {}): Promise<LdmRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...LDM_ARGS, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
    proc.stdin.on('error', () => {}); // a command that never reads its input
    proc.stdin.end(opts.input ?? '');
  });
}

/**
 * Several runs of `ldm`, at most `concurrency` at a time (each start compiles the
 * sources through tsx: about half a second of CPU), results by the caller's keys.
 */
export async function runLdmAll<K extends string>(runs: Record<K, string[]>, opts: LdmRunOptions = {}, concurrency = 3): Promise<Record<K, LdmRun>> {
  const keys = Object.keys(runs) as K[];
  const out = {} as Record<K, LdmRun>;
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const k = keys[next++]!;
      out[k] = await runLdm(runs[k], opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
  return out;
}
