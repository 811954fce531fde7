/**
 * Two network namespaces for the agents of one test, so that a link between them can
 * really go down: each namespace has a control link to this (the root) namespace, for
 * the test's own requests, and one veth pair joins the two namespaces: the link the
 * migration crosses. Taking that pair down drops packets silently (no reset reaches
 * either agent), as a cut cable or a dead switch would.
 *
 *   root ──ctl── A (10.213.K.2)          A ──mig── B: 10.213.K.9 <-> 10.213.K.10
 *   root ──ctl── B (10.213.K.6)
 *
 * Needs root and iproute2 (`ip netns`); `netnsUnavailable()` says why it cannot be
 * had, for the test to report itself skipped with that reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export interface Side {
  /** The namespace's name (`ip netns exec NAME`). */
  ns: string;
  /** Where the test reaches an agent in it. */
  control: string;
  /** Its address on the link between the two namespaces. */
  link: string;
}

export interface NetnsPair {
  a: Side;
  b: Side;
  /** Take the link between the namespaces down (both ends lose carrier; packets are dropped). */
  down(): void;
  /** Bring it up again and wait for the carrier. */
  up(): Promise<void>;
  /** Delete both namespaces (their interfaces go with them). */
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)';
  const probe = `ldmprobe${process.pid % 100000}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error) return `iproute2's ip cannot be run (${r.error.message}): apt-get install iproute2`;
  if (r.status !== 0) return `ip netns add failed: ${(r.stderr || r.stdout).trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** Make the two namespaces and their links (names and addresses unique to this process). */
export function makeNetnsPair(): NetnsPair {
  const n = process.pid % 250;
  const tag = String(process.pid % 100000);
  const net = `10.213.${n}`;
  const a: Side = { ns: `ldmA${tag}`, control: `${net}.2`, link: `${net}.9` };
  const b: Side = { ns: `ldmB${tag}`, control: `${net}.6`, link: `${net}.10` };
  const remove = () => {
    for (const s of [a, b]) spawnSync('ip', ['netns', 'del', s.ns]);
  };
  remove();
  try {
    for (const [s, rootAddr, nsAddr, root] of [
      [a, `${net}.1`, a.control, `lca${tag}`],
      [b, `${net}.5`, b.control, `lcb${tag}`],
    ] as const) {
      ip('netns', 'add', s.ns);
      ip('-n', s.ns, 'link', 'set', 'lo', 'up');
      ip('link', 'add', root, 'type', 'veth', 'peer', 'name', 'ctl', 'netns', s.ns);
      ip('addr', 'add', `${rootAddr}/30`, 'dev', root);
      ip('link', 'set', root, 'up');
      ip('-n', s.ns, 'addr', 'add', `${nsAddr}/30`, 'dev', 'ctl');
      ip('-n', s.ns, 'link', 'set', 'ctl', 'up');
    }
    ip('-n', a.ns, 'link', 'add', 'mig', 'type', 'veth', 'peer', 'name', 'mig', 'netns', b.ns);
    ip('-n', a.ns, 'addr', 'add', `${a.link}/30`, 'dev', 'mig');
    ip('-n', b.ns, 'addr', 'add', `${b.link}/30`, 'dev', 'mig');
    ip('-n', a.ns, 'link', 'set', 'mig', 'up');
    ip('-n', b.ns, 'link', 'set', 'mig', 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return {
    a,
    b,
    down: () => void ip('-n', a.ns, 'link', 'set', 'mig', 'down'),
    up: async () => {
      ip('-n', a.ns, 'link', 'set', 'mig', 'up');
      const deadline = Date.now() + 5000;
      while (!/LOWER_UP/.test(ip('-n', a.ns, '-o', 'link', 'show', 'mig')) || !/LOWER_UP/.test(ip('-n', b.ns, '-o', 'link', 'show', 'mig'))) {
        if (Date.now() > deadline) throw new Error('the link between the namespaces did not come up within 5 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    remove,
  };
}
