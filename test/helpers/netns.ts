/**
 * Two network namespaces for the agents of one test, so that the network between them
 * can really fail: each namespace has a control link to this (the root) namespace, for
 * the test's own requests, and the link the migration crosses runs through a third
 * namespace, a switch (a bridge with one port towards each agent). Taking both switch
 * ports down is a dead switch: both agents lose carrier but keep their addresses and
 * routes, so what they send, a new connection's SYN included, is dropped silently, the
 * same in both directions (no reset, no "network unreachable").
 *
 *   root ──ctl── A (10.213.K.2)          A (10.213.K.9) ──mig── [switch S: br0] ──mig── B (10.213.K.10)
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
  /** Take the switch's ports down: both agents lose carrier, keep their routes, and their packets are dropped. */
  down(): void;
  /** Bring it up again and wait for the carrier. */
  up(): Promise<void>;
  /** Delete the three namespaces (their interfaces go with them). */
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
  try {
    // What makeNetnsPair builds with: a veth pair and a bridge (kernel modules a container may lack).
    for (const args of [
      ['link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'],
      ['link', 'add', 'br0', 'type', 'bridge'],
    ]) {
      const made = spawnSync('ip', ['-n', probe, ...args], { encoding: 'utf8' });
      if (made.status !== 0) return `ip ${args.slice(0, 2).join(' ')} ${args.slice(4, 5).join('')} failed: ${(made.stderr || made.stdout).trim()}`;
    }
    return undefined;
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
}

/** Make the two namespaces and their links (names and addresses unique to this process). */
export function makeNetnsPair(): NetnsPair {
  const n = process.pid % 250;
  const tag = String(process.pid % 100000);
  const net = `10.213.${n}`;
  const a: Side = { ns: `ldmA${tag}`, control: `${net}.2`, link: `${net}.9` };
  const b: Side = { ns: `ldmB${tag}`, control: `${net}.6`, link: `${net}.10` };
  const sw = `ldmS${tag}`;
  const remove = () => {
    for (const ns of [a.ns, b.ns, sw]) spawnSync('ip', ['netns', 'del', ns]);
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
    ip('netns', 'add', sw);
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (const [s, port] of [
      [a, 'pa'],
      [b, 'pb'],
    ] as const) {
      ip('-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'mig', 'netns', s.ns);
      ip('-n', sw, 'link', 'set', port, 'master', 'br0');
      ip('-n', sw, 'link', 'set', port, 'up');
      ip('-n', s.ns, 'addr', 'add', `${s.link}/29`, 'dev', 'mig');
      ip('-n', s.ns, 'link', 'set', 'mig', 'up');
    }
  } catch (err) {
    remove();
    throw err;
  }
  return {
    a,
    b,
    down: () => {
      for (const port of ['pa', 'pb']) ip('-n', sw, 'link', 'set', port, 'down');
    },
    up: async () => {
      for (const port of ['pa', 'pb']) ip('-n', sw, 'link', 'set', port, 'up');
      // Carrier back on both agents' ends, and the bridge forwarding on both ports.
      const deadline = Date.now() + 10_000;
      const ready = () =>
        /LOWER_UP/.test(ip('-n', a.ns, '-o', 'link', 'show', 'mig')) &&
        /LOWER_UP/.test(ip('-n', b.ns, '-o', 'link', 'show', 'mig')) &&
        ['pa', 'pb'].every((port) => /state forwarding/.test(ip('-n', sw, '-d', 'link', 'show', port)));
      while (!ready()) {
        if (Date.now() > deadline) throw new Error('the switch between the namespaces did not come back within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    remove,
  };
}
