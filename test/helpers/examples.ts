/**
 * Which files of xml-examples/responses/ and xml-examples/events/ the agent
 * itself produces (test/examples-agent.test.ts captures them from a real
 * agent and compares them with the committed files), and how a captured
 * document becomes a file. The rest of those two folders is written by
 * xml-examples/generate.ts; test/examples.test.ts checks that every file
 * there comes from one of the two.
 */
import { LDM_ACTIONS } from '../../agent/xml/actions.ts';

/** The folders (under xml-examples/) whose every file is produced, by the agent test or by generate.ts. */
export const PRODUCED_DIRS = ['responses', 'events'] as const;

/**
 * Actions whose responses the agent test does not capture: migrate-domain
 * (a migration needs a second agent; its examples come from generate.ts, and
 * test/migration-*.test.ts check the real answers),
 * the Netra data plane channel actions and the later releases' actions the
 * agent does not model (answered "not supported" on every platform we
 * simulate; test/domains-io.test.ts checks that answer).
 */
export const NOT_FROM_AGENT: readonly string[] = [
  'migrate-domain',
  'add-vdpcc', 'remove-vdpcc', 'add-vdpcs', 'remove-vdpcs',
  'add-vhba', 'set-vhba', 'remove-vhba', 'rescan-vhba', 'list-hba',
  'add-vsan', 'remove-vsan',
  'list-vmapi', 'set-vmapi', 'remove-vmapi',
  'list-rsrc-group', 'list-dependencies', 'list-netdev', 'list-netstat',
];

/** Every action the agent test answers once with success and once with failure. */
export const AGENT_ACTIONS: readonly string[] = LDM_ACTIONS.filter((a) => !NOT_FROM_AGENT.includes(a));

/** Responses that answer a whole document rather than one action. */
export const AGENT_SPECIAL_RESPONSES = ['several-commands', 'unknown-action', 'no-cmd'] as const;

/** Events captured from the agent during the session (by their action). */
export const AGENT_EVENTS = ['start-domain', 'add-vcpu', 'add-crypto', 'add-spconfig'] as const;

/** Paths under xml-examples/ of every file the agent test produces. */
export const AGENT_EXAMPLES: readonly string[] = [
  ...AGENT_ACTIONS.flatMap((a) => [`responses/${a}.success.xml`, `responses/${a}.failure.xml`]),
  ...AGENT_SPECIAL_RESPONSES.map((n) => `responses/${n}.xml`),
  ...AGENT_EVENTS.map((n) => `events/${n}.xml`),
];

/** What a developer runs after an intended change of the agent's output. */
export const UPDATE_COMMAND = 'UPDATE_EXAMPLES=1 npx tap test/examples-agent.test.ts';

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

/**
 * The file for one document exactly as the agent sent it (from `<LDM_interface`
 * or `<LDM_event` to its end tag): an XML declaration line, the document, a
 * newline, so that the file is a valid standalone document. Uptimes are written
 * as 0 (they change by the second).
 */
export function exampleFile(document: string): string {
  // Uptimes count seconds since a guest booted: the one value that changes from run to run, kept as 0.
  return `${DECLARATION}\n${document.replace(/(key="uptime">)\d+</g, '$10<')}\n`;
}

/**
 * A unified diff (3 lines of context) of two texts, line by line: what a
 * developer reads when a committed example no longer matches the agent.
 */
export function lineDiff(expected: string, actual: string, names = ['committed', 'agent']): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  // Longest common subsequence table, from the end (files are a few hundred lines).
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  type Op = { kind: ' ' | '-' | '+'; line: string; ai: number; bi: number };
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push({ kind: ' ', line: a[i]!, ai: i++, bi: j++ });
    else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ kind: '-', line: a[i]!, ai: i++, bi: j });
    else ops.push({ kind: '+', line: b[j]!, ai: i, bi: j++ });
  }
  const CONTEXT = 3;
  const out = [`--- ${names[0]}`, `+++ ${names[1]}`];
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.kind === ' ') {
      k++;
      continue;
    }
    // A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change close to it.
    const start = Math.max(0, k - CONTEXT);
    let end = k;
    while (end < ops.length) {
      if (ops[end]!.kind !== ' ') {
        end++;
        continue;
      }
      let next = end;
      while (next < ops.length && ops[next]!.kind === ' ') next++;
      if (next < ops.length && next - end <= 2 * CONTEXT) end = next;
      else break;
    }
    const stop = Math.min(ops.length, end + CONTEXT);
    const hunk = ops.slice(start, stop);
    const aCount = hunk.filter((o) => o.kind !== '+').length;
    const bCount = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${hunk[0]!.ai + 1},${aCount} +${hunk[0]!.bi + 1},${bCount} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
    k = stop;
  }
  return out.join('\n');
}
