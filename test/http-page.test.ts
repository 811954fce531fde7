// The live page in headless Chromium (playwright-core, Debian's chromium): it loads
// from a real agent (a child process with --http), shows the machine and the
// domains table, and follows a real live migration to another agent until its
// bar says done, without a reload. A screenshot is kept with the test output.
// Without a Chromium binary the test reports itself skipped, with the reason.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { migrateXml, startPair, waitFor } from './helpers/cluster.ts';

const CHROMIUM = process.env['LDM_TEST_CHROMIUM'] ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (Debian package chromium; .ci/run installs it)`;

t.test('the page shows the domains and a live migration reaching done', { skip, timeout: 90_000 }, async (t) => {
  const { chromium } = await import('playwright-core');
  // 16 MB/s: a 128 MiB guest takes seconds to move, so the page sees the bar under way.
  const { a, b } = await startPair(t, { a: { args: ['--http', '127.0.0.1:0'], config: { migration: { maxBandwidth: 16_000_000 } } } });
  const m = /web app: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(a.stdout());
  if (!m) throw new Error(`the agent printed no web address:\n${a.stdout()}`);
  const url = m[1]!;
  await Promise.all([a.services(), b.services()]);
  await a.domain('ldg1', 'active', { vcpus: 4, memory: '256M', vars: { 'sim-working-set': '48M', 'sim-fill': 'random', 'sim-dirty-rate': '2M' } });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  t.teardown(() => browser.close());
  // A phone's width: the page must work there.
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(url);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 10_000 });

  const rows = await page.$$eval('#domains tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  const ldg1 = rows.find((r) => r[0] === 'ldg1');
  t.ok(ldg1, `the domains table lists ldg1 (${rows.map((r) => r[0]).join(', ')})`);
  t.match(ldg1, ['ldg1', 'active', /^-n/, '4', '256M'], 'state, flags, vCPUs and memory of ldg1');
  t.ok(rows.some((r) => r[0] === 'primary'), 'and the control domain');
  t.match(await page.textContent('#strands-text'), /\d+ used, \d+ free of \d+/, 'the machine strands');
  t.notMatch(await page.getAttribute('#memory-bar', 'style'), /width: 0%/, 'the memory bar shows use');
  const widest = await page.evaluate(() => document.documentElement.scrollWidth);
  t.ok(widest <= 390, `no sideways scrolling of the page on a phone (${widest}px)`);
  await waitFor(async () => (await page.textContent('#live')) === 'live', 5000, 'the event stream open');

  // The migration, started through the XML interface; the page must follow it from its events alone.
  const requester = await a.client();
  const answer = requester.request(migrateXml('ldg1', b.address));
  const seen = new Set<string>();
  const percents: number[] = [];
  await waitFor(async () => {
    const state = await page.$eval('.migration[data-domain="ldg1"]', (e) => [e.getAttribute('data-status'), e.querySelector('.percent')?.textContent]).catch(() => null);
    if (state) {
      seen.add(state[0]!);
      percents.push(Number.parseInt(state[1] ?? '', 10));
    }
    return state?.[0] === 'completed';
  }, 60_000, 'the page showing the migration completed');
  const doc = await answer;
  t.equal(doc.response?.status, 'success', 'the migration succeeded');
  t.ok(seen.has('active') || seen.has('setup') || seen.has('device'), `the page showed it under way (${[...seen].join(' ')})`);
  t.ok(percents.some((p) => p > 0 && p < 100), `a partial bar was seen (${[...new Set(percents)].join(' ')})`);
  t.equal(await page.textContent('.migration[data-domain="ldg1"] .percent'), '100%');
  t.match(await page.getAttribute('.migration[data-domain="ldg1"] .fill', 'style'), /width: 100%/, 'the bar is full');
  t.match(await page.getAttribute('.migration[data-domain="ldg1"] .fill', 'class'), /\bdone\b/, 'and drawn as done');
  await waitFor(async () => !(await page.$('#domains tbody tr[data-domain="ldg1"]')), 5000, 'ldg1 gone from the source table');

  const dir = join(t.testdirName, '..', 'http-page-screenshots');
  mkdirSync(dir, { recursive: true });
  const shot = join(dir, 'migration-done.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.comment(`screenshot: ${shot}`);
  t.same(problems, [], 'no script errors and no CSP violations');
});
