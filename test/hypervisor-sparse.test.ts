/**
 * Guest memory is sparse: a child process's RSS grows with the working set the guest
 * fills, not with the guest's nominal size; destroying the guest gives the memory back.
 * The guest runs in a child (test/fixtures/hypervisor-rss.ts) so that nothing else of the
 * test runner's memory is counted.
 */
import t from 'tap';
import { spawn } from 'node:child_process';

const FIXTURE = new URL('./fixtures/hypervisor-rss.ts', import.meta.url).pathname;
const MB = 1e6;

interface Report {
  nominal: number;
  workingSet: number;
  pages: number;
  rssBefore: number;
  rssAfterFill: number;
  rssAfterDestroy: number;
  fillMs: number;
  touchedPages: number;
  residentBytes: number;
  lastPageZero: boolean;
  scrub: { scrubMs: number; pages: number; bytes: number };
}

function child(env: Record<string, string>): Promise<Report> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', FIXTURE], {
      cwd: new URL('..', import.meta.url).pathname, // where tsx resolves
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d));
    proc.stderr.on('data', (d: Buffer) => (err += d));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`fixture exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Report);
      } catch (e) {
        reject(new Error(`fixture printed no report: ${out}${err}`, { cause: e }));
      }
    });
  });
}

const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

t.test('a 16G guest that fills a 64M working set grows RSS by about 64M', async (t) => {
  const r = await child({ NOMINAL: '16G', WORKING_SET: '64M' });
  t.equal(r.pages, 2 * 2 ** 20, '16G is 2M pages');
  t.equal(r.touchedPages, 8192, '64M is 8192 pages');
  t.equal(r.residentBytes, 64 * 2 ** 20, 'the guest holds exactly its working set');
  t.ok(r.lastPageZero, 'the last page of the 16G reads as zero');
  const growth = r.rssAfterFill - r.rssBefore;
  t.ok(growth > 60 * MB, `RSS grew ${mb(growth)}: at least 60 MB (the 67.1 MB of the working set is really written)`);
  t.ok(growth < 200 * MB, `RSS grew ${mb(growth)}: under 200 MB, against ${mb(r.nominal)} nominal (fill ${r.fillMs.toFixed(0)} ms)`);
});

t.test('destroy returns the memory to the system at once', async (t) => {
  // Guest storage is not malloc's (memory.ts, slabs): no garbage collection and no
  // MALLOC_TRIM_THRESHOLD_ needed for the RSS to show the free.
  const r = await child({ NOMINAL: '64G', WORKING_SET: '64M' });
  t.equal(r.pages, 8 * 2 ** 20, '64G is 8M pages');
  const growth = r.rssAfterFill - r.rssBefore;
  t.ok(growth > 60 * MB && growth < 200 * MB, `a 64G guest filling 64M: RSS grew ${mb(growth)} (60 to 200 MB)`);
  t.equal(r.scrub.bytes, 64 * 2 ** 20, `the scrub zeroed and freed 64M in ${r.scrub.scrubMs.toFixed(1)} ms`);
  const left = r.rssAfterDestroy - r.rssBefore;
  t.ok(left < 20 * MB, `after destroy RSS is ${mb(left)} above where it started (limit 20 MB)`);
});
