/**
 * The real `ldm` executable, run from its sources through tsx as a child process
 * (as test/helpers/daemon.ts runs the agent), for the migrate, cancel, events and
 * xml tests: run to its end, or start it and steer it (signals, its output so far).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const LDM_ARGS = ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../agent/cli/ldm.ts', import.meta.url))];

export interface LdmResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface LdmRun {
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
export function startLdm(args: string[], opts: LdmOptions = {}): LdmRun {
  return startProgram(process.execPath, [...LDM_ARGS, ...args], opts);
}

/** Start any program with the agent's state in its environment (for `script -qfc ...`). */
export function startProgram(file: string, args: string[], opts: LdmOptions = {}): LdmRun {
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
export async function waitOutput(run: LdmRun, check: (out: string, err: string) => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check(run.stdout(), run.stderr())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
