/**
 * `npm run bench` runs every benchmark listed here, in order;
 * `npm run bench -- NAME` runs one. Benchmarks never run inside `npm test`.
 */
interface Benchmark {
  run(): Promise<void>;
}

const BENCHMARKS: Record<string, () => Promise<Benchmark>> = {
  codec: () => import('./codec.ts'),
  hypervisor: () => import('./hypervisor.ts'),
  transport: () => import('./transport.ts'),
};

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
  for (const name of names) {
    console.log(`# ${name}`);
    const bench = await BENCHMARKS[name]!();
    await bench.run();
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
