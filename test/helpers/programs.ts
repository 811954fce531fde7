/**
 * Tests that run another program (today: `openssl`, to probe the agent as a stock
 * TLS client would) go through here, so that a machine without it fails with the
 * package to install instead of a bare `spawnSync openssl ENOENT`.
 */
import { spawnSync, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';

/** The programs tests use, with the Debian package that provides each. */
export const PROGRAM_PACKAGES = { openssl: 'openssl' } as const;
export type Program = keyof typeof PROGRAM_PACKAGES;

export const missingProgram = (program: Program) =>
  `this test runs \`${program}\`, which is not installed: install the Debian package ${PROGRAM_PACKAGES[program]} (apt-get install ${PROGRAM_PACKAGES[program]})`;

/** spawnSync of `program`; throws a message naming its package when the program is missing. */
export function runProgram(program: Program, args: string[], options: Omit<SpawnSyncOptionsWithStringEncoding, 'encoding'> = {}): SpawnSyncReturns<string> {
  const r = spawnSync(program, args, { ...options, encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(missingProgram(program));
  return r;
}
