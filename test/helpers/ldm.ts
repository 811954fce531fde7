/**
 * The `ldm` executable as a user runs it: a child process on the TypeScript
 * sources (through tsx, like AGENT_ARGS), with its exit status and its two
 * output streams once it has ended (runLdm, runLdmAll, ldm), or started and
 * steered while it runs (startLdm, startProgram for `script -qfc ...`, waitOutput).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
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

// ── started and steered ────────────────────────────────────────────────────

export interface LdmResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `ldm` (or other program): steer it, read its output so far. */
export interface LdmProcess {
  proc: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  done: Promise<LdmResult>;
}

export interface LdmOptions {
  /** The agent's state directory (its local socket is STATE/ldmd.sock). */
  state?: string;
  /** Written to standard input, which is then closed (left open when undefined). */
  input?: string;
  /** Killed (SIGKILL) after this long: a hung command fails its test rather than the run. */
  timeoutMs?: number;
}

/** Start `ldm ARGS`. */
export function startLdm(args: string[], opts: LdmOptions = {}): LdmProcess {
  return startProgram(process.execPath, [...LDM_ARGS, ...args], opts);
}

/** Start any program with the agent's state in its environment (for `script -qfc ...`). */
export function startProgram(file: string, args: string[], opts: LdmOptions = {}): LdmProcess {
  const env = { ...process.env, ...(opts.state ? { LDM_AGENT_STATE: opts.state } : {}) };
  const proc = spawn(file, args, { env });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  proc.stderr.on('data', (d: Buffer) => (err += d));
  if (opts.input !== undefined) proc.stdin.end(opts.input);
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  const done = new Promise<LdmResult>((resolve) =>
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: err });
    }),
  );
  return { proc, stdout: () => out, stderr: () => err, done };
}

/** Run `ldm ARGS` to its end. */
export function ldm(args: string[], opts: LdmOptions = {}): Promise<LdmResult> {
  return startLdm(args, { input: '', ...opts }).done;
}

/** Resolve when `check` holds for the output so far (polled every 20 ms), reject after `ms`. */
export async function waitOutput(run: LdmProcess, check: (out: string, err: string) => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check(run.stdout(), run.stderr())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
