/**
 * What a process holds, read from /proc (Linux): resident memory and open file
 * descriptors, once or sampled over a load for its peak. The load tests read the
 * agent's child process this way, from outside, as an operator's monitoring would.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface Holdings {
  /** VmRSS, in MiB. */
  rssMb: number;
  /** Entries of /proc/PID/fd. */
  fds: number;
}

export function holdings(pid: number): Holdings {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return { rssMb: Number(m[1]) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

export const describe = (h: Holdings) => `RSS ${h.rssMb.toFixed(1)} MB, ${h.fds} fds`;

/** Samples a process every `everyMs` until stopped; keeps the peaks. */
export class Sampler {
  peak: Holdings;
  samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    this.peak = holdings(pid);
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): Holdings {
    const h = holdings(this.pid);
    this.samples++;
    this.peak = { rssMb: Math.max(this.peak.rssMb, h.rssMb), fds: Math.max(this.peak.fds, h.fds) };
    return h;
  }

  /** Stop sampling (after one last sample); the peaks. */
  stop(): Holdings {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

/**
 * Poll until the process's holdings satisfy `ok` (every 200 ms, for at most `ms`):
 * the last reading, whether or not it satisfied. The settle after a load: sockets
 * close within moments, V8 gives memory back after an idle while.
 */
export async function settle(pid: number, ok: (h: Holdings) => boolean, ms: number): Promise<Holdings> {
  const deadline = Date.now() + ms;
  for (;;) {
    const h = holdings(pid);
    if (ok(h) || Date.now() >= deadline) return h;
    await new Promise((r) => setTimeout(r, 200));
  }
}
