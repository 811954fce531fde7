/** Schema problems (agent/xml/schema.ts) as `line: reason` lines, for assertion messages. */
import type { Problem } from '../../agent/xml/validate.ts';

export const showProblems = (problems: readonly Problem[]): string => problems.map((p) => `${p.line}: ${p.reason}`).join('\n');
