/**
 * The migration fault matrix (issue 11): every migration state crossed with one fault,
 * between two real agent processes. Each test file runs one fault down the states
 * (test/matrix-*.test.ts) and prints its column of the table.
 *
 * A state is reached deterministically by a test hold point (agent/migration/holds.ts),
 * never by sleeping: the agent that holds is started with LDM_AGENT_TEST_HOLD set to
 * that point, the test waits for its log line, strikes, and releases the hold with
 * SIGUSR2 where the migration must run on into the fault (a cut link).
 *
 * After every case, whatever the fault:
 * - the domain runs on exactly one of the two agents, active with no migration flag,
 *   its guest working (an error state must have been settled once the agents met again);
 * - the other agent has no such domain and, when it was the target, exactly the free
 *   resources it had before the case (nothing half-received or reserved is left);
 * - no acknowledged change is lost: a variable set on the domain before the case is on
 *   it wherever it ended, and a domain added on each agent before the case is there;
 * - a retry succeeds, its memory digests equal on both sides (the guest's memory
 *   arrived intact).
 * The migrations use -c (the agents log in to each other with their certificates), so
 * an agent restarted in the error state settles by itself, with no password kept.
 */
import type { Test } from 'tap';
import { migrationRunMessages as rm } from '../../agent/messages.ts';
import { data, request, variable } from './requests.ts';
import { messages, ok } from './session.ts';
import { migrate, startPair, tcpProxy, waitFor, type AgentProc, type MigrateResult, type PairOptions } from './cluster.ts';
import { cancelXml, column6, runsHere, waitHeld } from './faults.ts';
import type { NetnsPair } from './netns.ts';

export type Fault = 'cancel' | 'kill source' | 'kill target' | 'cut';
type Ends = 'source' | 'target';

export interface State {
  /** The state as the table names it. */
  name: string;
  /** Which agent holds, and where (holds.ts). */
  side: 'source' | 'target';
  hold: string;
  /** Reached by losing the link in the handoff window: the source in the error state, settling. */
  settle?: boolean;
}

export const STATES: State[] = [
  { name: 'checks', side: 'source', hold: 'checks' },
  { name: 'prepare', side: 'source', hold: 'prepare' },
  { name: 'pre-copy pass 1', side: 'source', hold: 'precopy:1' },
  { name: 'pre-copy pass 2', side: 'source', hold: 'precopy:2' },
  { name: 'stop-and-copy', side: 'source', hold: 'stopcopy' },
  { name: 'handoff: resume received', side: 'target', hold: 'handoff' },
  { name: 'handoff: resumed, unconfirmed', side: 'target', hold: 'confirm' },
  { name: 'settle (error state)', side: 'target', hold: 'confirm', settle: true },
];

/**
 * Where the domain must end. Before the resume reaches the target, every fault leaves it
 * on the source; once the target has resumed it, on the target. In between (resume
 * received, not yet acted on): the target resumes it unless it dies or loses its source
 * first; a cancel is refused there (too late), and the migration completes.
 */
export function expectedEnd(state: State, fault: Fault): Ends {
  if (state.side === 'source') return 'source';
  if (state.hold === 'handoff' && (fault === 'kill source' || fault === 'kill target')) return 'source';
  return 'target';
}

/** How the agents reach each other, and how the test cuts that. */
export interface Link {
  /** migrate-domain's target for `agent`. */
  target(agent: AgentProc): string;
  /** Lose the link: packets dropped (namespaces) or connections reset and refused (proxies). */
  cut(): Promise<void>;
  restore(): Promise<void>;
}

/** Config of both agents: short peer bounds, so a cut ends in seconds; three paced passes. */
export const MATRIX_CONFIG = {
  migration: { peerTimeoutMs: 2000, downtimeLimitMs: 1, maxIterations: 3, maxBandwidth: 32e6 },
};
const GUEST = { 'sim-working-set': '8M', 'sim-fill': 'random', 'sim-dirty-rate': '4M' };

export interface Matrix {
  a: AgentProc;
  b: AgentProc;
  link: Link;
  run(t: Test, state: State, fault: Fault): Promise<void>;
  /** The column as a Markdown table (printed by the test). */
  table(): string;
}

/** Run `fault` down every state, then print the column (what each test/matrix-*.test.ts does). */
export async function runColumn(t: Test, m: Matrix, fault: Fault): Promise<void> {
  for (const state of STATES) await t.test(`${state.name} × ${fault}`, (t) => m.run(t, state, fault));
  await t.test('the column of the matrix', async (t) => {
    t.comment('\n' + m.table());
    t.equal(m.table().split('\n').length - 2, STATES.length, 'one row per state');
  });
}

/** Two agents on loopback, reaching each other through TCP proxies (cut: reset and refused). */
export async function loopbackMatrix(t: Test): Promise<Matrix> {
  const { a, b } = await startPair(t, pairOptions());
  const proxies = new Map<AgentProc, Awaited<ReturnType<typeof tcpProxy>>>([
    [a, await tcpProxy(t, a.port)],
    [b, await tcpProxy(t, b.port)],
  ]);
  const link: Link = {
    target: (x) => `127.0.0.1:${proxies.get(x)!.port}`,
    cut: async () => {
      for (const p of proxies.values()) {
        await p.refuse();
        p.cut();
      }
    },
    restore: async () => {
      for (const p of proxies.values()) await p.accept();
    },
  };
  return matrix(a, b, link);
}

/** Two agents in namespaces of their own (netns.ts), joined through a switch namespace. */
export async function netnsMatrix(t: Test, pair: NetnsPair): Promise<Matrix> {
  const opts = pairOptions();
  const { a, b } = await startPair(t, {
    a: { ...opts.a, netns: pair.a.ns, host: pair.a.control },
    b: { ...opts.b, netns: pair.b.ns, host: pair.b.control },
  });
  const linkAddress = new Map([
    [a, pair.a.link],
    [b, pair.b.link],
  ]);
  const link: Link = {
    target: (x) => `${linkAddress.get(x)}:${x.port}`,
    cut: async () => pair.down(),
    restore: () => pair.up(),
  };
  return matrix(a, b, link);
}

function pairOptions(): PairOptions {
  return { a: { config: MATRIX_CONFIG }, b: { config: MATRIX_CONFIG } };
}

async function matrix(a: AgentProc, b: AgentProc, link: Link): Promise<Matrix> {
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vcpus: 4, memory: '512M', vars: { ...GUEST, 'matrix-case': 'c0' } });
  const rows: string[] = [];
  /** The hold each agent was started with ('' none): only those get SIGUSR2 (its default action ends a process). */
  const holds = new Map<AgentProc, string>([
    [a, ''],
    [b, ''],
  ]);
  let holder = a;
  let other = b;
  let n = 0;

  const startWith = async (agent: AgentProc, hold: string) => {
    if (agent.running) await agent.stop();
    await agent.start({ env: hold ? { LDM_AGENT_TEST_HOLD: hold } : {} });
    holds.set(agent, hold);
  };
  const release = (agent: AgentProc) => {
    if (agent.running && holds.get(agent)) process.kill(agent.proc!.pid!, 'SIGUSR2');
  };
  /** Wait for `p` while releasing every hold the agents take meanwhile (the retry runs through the points). */
  const releasing = async <T>(agents: AgentProc[], p: Promise<T>): Promise<T> => {
    const holdsLogged = (x: AgentProc) => (x.stdout() + x.stderr()).split('migration held (test)').length - 1;
    const seen = new Map(agents.map((x) => [x, holdsLogged(x)]));
    const timer = setInterval(() => {
      for (const x of agents) {
        const now = holdsLogged(x);
        if (now > seen.get(x)!) release(x);
        seen.set(x, now);
      }
    }, 25);
    try {
      return await p;
    } finally {
      clearInterval(timer);
    }
  };
  /** Restarted after a SIGKILL: no hold (the state was struck). */
  const revive = async (agent: AgentProc) => {
    await agent.kill();
    await startWith(agent, '');
  };
  const freeResources = async (agent: AgentProc) => withoutLines((await agent.must(request('list-devices'))).commands[0]!.data);
  const options = (target: AgentProc) => ({ address: link.target(target), options: ['-c'] });

  async function run(t: Test, state: State, fault: Fault): Promise<void> {
    const src = holder;
    const dst = other;
    const held = state.side === 'source' ? src : dst;
    const id = `c${++n}`;
    // Holds for this case only: the holding agent restarted with its point, the other with none.
    await startWith(held, state.hold);
    if (holds.get(held === src ? dst : src)) await startWith(held === src ? dst : src, '');

    // Acknowledged changes before the case: one that travels with the domain, one on each agent.
    await src.must(request('set-variable', data('ldg1', variable('matrix-case', id))));
    await src.must(request('add-domain', data(`keep-${src.name}-${id}`)));
    await dst.must(request('add-domain', data(`keep-${dst.name}-${id}`)));
    const targetBefore = await freeResources(dst);

    const requester = await src.client();
    // The requester's session dies with a killed source: its answer is then that failure.
    const pending: Promise<MigrateResult> = migrate(src, dst, 'ldg1', { ...options(dst), client: requester }).catch(
      (err: Error) => ({ ok: false, lines: [`(requester: ${err.message})`], all: [], doc: undefined as never }),
    );
    await waitHeld(held, state.hold);
    let linkCut = false;
    const notes: string[] = [];

    if (state.settle) {
      // Lose the link while the target holds its confirmation: the source enters the error state.
      await link.cut();
      linkCut = true;
      const r = await pending;
      t.equal(r.ok, false, `${state.name}: the migration fails in its handoff: ${r.lines.join(' | ')}`);
      await waitFor(async () => column6((await src.listDomain('ldg1'))?.['flags']) === 'e', 10_000, 'the error state on the source');
      t.equal((await src.listDomain('ldg1'))?.['sim-workload'], 'stopped', 'its guest stays paused: never running on both');
    }

    switch (fault) {
      case 'cancel': {
        const c = await src.request(cancelXml('ldg1'));
        const said = messages(c).join(' | ');
        if (state.settle) {
          t.equal(ok(c), false, `cancel refused while the target cannot be asked: ${said}`);
          t.match(said, /cannot be asked/, 'the refusal says the target cannot be asked');
          notes.push('cancel refused (target unreachable)');
        } else if (state.side === 'target') {
          t.equal(ok(c), false, `cancel refused in the handoff: ${said}`);
          t.equal(messages(c)[0], rm.tooLateToCancel('ldg1'), 'too late to cancel');
          notes.push('cancel refused (too late)');
          release(dst);
        } else {
          t.ok(ok(c), `cancel accepted: ${said}`);
          notes.push('cancelled');
        }
        break;
      }
      case 'kill source':
        await src.kill();
        notes.push('source killed and restarted');
        await revive(src);
        break;
      case 'kill target':
        await dst.kill();
        notes.push('target killed and restarted');
        await revive(dst);
        break;
      case 'cut':
        if (state.settle) {
          // Already cut: the settle attempts fail while it stays down.
          await waitFor(() => (src.stdout() + src.stderr()).includes('cannot settle ldg1 with'), 15_000, 'a settle attempt failed on the cut link');
          notes.push('settle attempts failed while cut');
        } else {
          await link.cut();
          linkCut = true;
          release(held);
          notes.push('link cut');
        }
        break;
    }

    const r = await pending;
    // Restored once the source has given the migration up (its answer came): the cut outlived every peer bound that mattered.
    if (linkCut) await link.restore();
    // Any hold still waiting (a target holding while its source died) ends now.
    release(dst);
    release(src);

    // Settled: exactly one agent runs it, with no flag; the other has none.
    const ends = await waitFor(async () => {
      const [s, d] = await Promise.all([src.listDomain('ldg1'), dst.listDomain('ldg1')]);
      if (s && !d && column6(s['flags']) === '-') return 'source' as const;
      if (d && !s && column6(d['flags']) === '-') return 'target' as const;
      return undefined;
    }, 30_000, `${state.name} × ${fault}: ldg1 on exactly one agent, settled`);
    const expected = expectedEnd(state, fault);
    t.equal(ends, expected, `${state.name} × ${fault}: the domain ends on the ${expected}`);
    const [now, gone] = ends === 'source' ? [src, dst] : [dst, src];
    await runsHere(t, now, 'ldg1', `${state.name} × ${fault}`);
    t.equal((await now.variables('ldg1'))['matrix-case'], id, 'the variable set before the case is on the domain');
    for (const x of [src, dst]) t.ok((await x.domainNames()).includes(`keep-${x.name}-${id}`), `${x.name} kept the domain added before the case`);
    if (gone === dst) t.same(await freeResources(dst), targetBefore, 'the target has exactly the free resources it had before: nothing half-received or reserved');
    else t.equal(await gone.listDomain('ldg1'), undefined, 'the source has no copy left');

    // The retry, from wherever it runs now: it completes, the memory digests equal on both sides.
    const again = await releasing([now, gone], migrate(now, gone, 'ldg1', options(gone)));
    t.ok(again.ok, `the retry succeeds: ${again.all.join(' | ')}`);
    const sent = (await now.migrations()).filter((m) => m['role'] === 'source').at(-1);
    const got = (await gone.migrations()).find((m) => m['id'] === sent?.['id']);
    t.match(sent?.['digest'], /^[0-9a-f]{16}$/, 'the retry has a memory digest');
    t.equal(got?.['digest'], sent?.['digest'], 'the target verified the same memory digest');
    holder = gone;
    other = now;

    const outcome = `${notes.join(', ')}; ${r.ok ? 'migrated' : 'migration failed'}; runs on the ${ends}${ends === expected ? '' : ` (EXPECTED ${expected})`}; retry ${again.ok ? 'ok' : 'FAILED'}`;
    const told = (r.ok ? 'success' : (r.lines[0] ?? '')).replace(/\|/g, '/');
    rows.push(`| ${state.name} | ${fault} | ${outcome} | ${told.length > 120 ? `${told.slice(0, 117)}...` : told} |`);
  }

  return {
    a,
    b,
    link,
    run,
    table: () => ['| state | fault | outcome | the requester was told |', '|---|---|---|---|', ...rows].join('\n'),
  };
}

/** A listing's data without line numbers (they differ between two identical answers). */
function withoutLines(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (k, v) => (k === 'line' ? undefined : v)));
}
