/**
 * `npm run bench` runs every benchmark listed here, in order;
 * `npm run bench -- NAME` runs one. Benchmarks never run inside `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Benchmark {
  run(): Promise<void>;
}

const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  codec: () => import('./codec.ts'),
  hypervisor: () => import('./hypervisor.ts'),
  transport: () => import('./transport.ts'),
  cli: () => import('./cli.ts'),
  migration: () => import('./migration.ts'),
};

/** These start bin/*.js, which run the bundles in dist/: built first, so never older than the sources. */
const USES_BINS = new Set(['transport', 'cli']);

function buildBundles(): void {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/build.mjs', import.meta.url))], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`scripts/build.mjs failed (status ${r.status})`);
}

async function main(args: string[]): Promise<number> {
  const usage = `usage: npm run bench [-- NAME...]   (NAME: ${Object.keys(BENCHMARKS).join(', ')})`;
  if (args.includes('-h') || args.includes('--help')) {
    console.log(usage);
    return 0;
  }
  const unknown = args.filter((a) => !Object.hasOwn(BENCHMARKS, a));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')}\n${usage}`);
    return 2;
  }
  const names = args.length > 0 ? args : Object.keys(BENCHMARKS);
  if (names.some((n) => USES_BINS.has(n))) buildBundles();
  for (const name of names) {
    console.log(`# ${name}`);
    const bench = await BENCHMARKS[name]!();
    await bench.run();
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
