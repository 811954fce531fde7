/**
 * Test hold points: `LDM_AGENT_TEST_HOLD=point[,point]` in an agent's environment makes
 * its side of every migration wait at each point named (source.ts, target.ts), so a
 * test can strike (cancel, kill, cut the link) in a chosen state instead of sleeping
 * and hoping. A hold ends when the migration is cancelled or its channel closes, or
 * when the agent gets SIGUSR2, which releases every hold in progress: the migration
 * goes on (how a test cuts a link first and lets the migration run into the cut).
 * With no hold points named, nothing here is installed.
 */

/** The points named in the environment. */
export function holdsFromEnv(env: NodeJS.ProcessEnv): Set<string> {
  const points = new Set((env['LDM_AGENT_TEST_HOLD'] ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  if (points.size > 0 && !signalInstalled) {
    signalInstalled = true;
    process.on('SIGUSR2', releaseHolds);
  }
  return points;
}

let signalInstalled = false;
const waiting = new Set<() => void>();

/** Release every hold in progress; how many there were. */
export function releaseHolds(): number {
  const n = waiting.size;
  for (const release of [...waiting]) release();
  waiting.clear();
  return n;
}

/**
 * Hold until released or until `ended` settles (a cancel or the channel closing:
 * rejected or resolved, the caller decides what that means). True when released.
 */
export function holdUntil(ended: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const release = () => resolve(true);
    waiting.add(release);
    ended.then(
      () => {
        waiting.delete(release);
        resolve(false);
      },
      (err: unknown) => {
        waiting.delete(release);
        reject(err);
      },
    );
  });
}
