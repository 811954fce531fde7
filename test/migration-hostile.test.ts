// Wrong or hostile peer agents: each must fail the migration cleanly on the other side.
//
// (a) A real source agent (alpha, a child process) migrates to a hostile target run in
// this process (helpers/hostile-target.ts: the agent's own XML service and login, its
// migration channel scripted): garbage frames, a frame that lies about its size, a
// malformed answer, an acknowledgement for the wrong pass, a digest that never matches,
// a verdict that contradicts the source's digest, a target that stops reading, one that
// goes silent. After each: the guest runs on at the source with no migration flag, the
// requester got one precise reason line and the summary line, list-migrations shows the
// migration failed with that reason, and at the end a real migration to a real target
// agent (beta) succeeds.
//
// (b) A hostile source in this process (helpers/hostile-source.ts: its own model and
// guest, the real login path) against a real target agent (beta): bad frames, lying
// sizes, a digest that never matches, a source that stops reading, a silent source.
// (test/migration-target.test.ts covers the out-of-order and malformed messages on the
// target as a unit; these are the process-level cases.) After each: the target has
// nothing left (no domain, list-devices as before) and logged why.
//
// Both agents run with migration.peerTimeoutMs = 2000, so the stalls end in seconds.
//
// Two cases are regressions of what this file found (each marked FOUND below): a "verified"
// whose digest was not the source's was believed (the domain was lost), and a bad frame
// arriving while the source wrote pages was reported as a destroyed stream.
import t, { type Test } from 'tap';
import { DEFAULT_MAX_FRAME, FRAME_CONTROL, FRAME_PAGES } from '../agent/migration/channel.ts';
import { RunningDigest } from '../agent/migration/digest.ts';
import { channelMessages, migrationMessages as mmsg, migrationRunMessages as rm } from '../agent/messages.ts';
import { migrate, startPair, waitFor, type AgentProc } from './helpers/cluster.ts';
import { absent, migrateOk, runsHere } from './helpers/faults.ts';
import { controlFrame, frameHeader, type HostilePeer } from './helpers/hostile-peer.ts';
import { startHostileSource } from './helpers/hostile-source.ts';
import { acceptUntilFinal, acceptUpToPrepare, startHostileTarget, type TargetScript } from './helpers/hostile-target.ts';
import { request } from './helpers/requests.ts';

const PEER_MS = 2000;
const TUNED = { config: { migration: { peerTimeoutMs: PEER_MS } } };
/** A digest no memory has here (the real ones are xxh64 sums of the guest's pages). */
const WRONG_DIGEST = 'ffffffffffffffff';

const { a, b } = await startPair(t, { a: TUNED, b: TUNED });
const hostile = await startHostileTarget(t);
hostile.trustedBy(a);
await Promise.all([a.services(), b.services()]);
// 16 MiB written and rewritten: more than the sockets between the agents hold, so a target
// that stops reading stalls the source's writes.
await a.domain('ldg1', 'active', { vars: { 'sim-working-set': '16M', 'sim-fill': 'random', 'sim-dirty-rate': '1M' } });
await waitFor(async () => /^(rewriting|idle)$/.test((await a.listDomain('ldg1'))?.['sim-workload'] ?? ''), 30_000, 'the working set of ldg1 filled');

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Migrate `domain` from alpha to the hostile target running `script`; the migration must
 * fail with `reason` (a line, or a pattern) and leave the guest running at the source.
 */
async function againstHostile(t: Test, domain: string, script: TargetScript, reason: string | RegExp): Promise<void> {
  hostile.script = script;
  const opened = hostile.channels.length;
  const started = Date.now();
  const r = await migrate(a, b, domain, { port: hostile.port, client: await a.client() });
  const took = Date.now() - started;
  t.equal(r.ok, false, `migrate-domain fails (${took} ms): ${r.lines.join(' | ')}`);
  t.equal(r.lines.length, 2, 'two lines: the reason, then the summary');
  if (typeof reason === 'string') t.equal(r.lines[0], reason, 'the reason line names what the target did');
  else t.match(r.lines[0], reason, 'the reason line names what the target did');
  t.equal(r.lines[1], mmsg.failed(domain), 'then the summary line');
  t.equal(hostile.channels.length, opened + 1, 'the source opened one channel to the target');
  // The source gave the channel up: it is closed, whatever the target's script was doing
  // (a target that stopped reading reads again, to see the close).
  const peer = hostile.channels.at(-1)!.peer;
  peer.socket.resume();
  const closed = await Promise.race([peer.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000))]);
  t.ok(closed, 'the source closed the channel');
  await runsHere(t, a, domain, 'at the source');
  const row = await a.migration(domain);
  t.match(row, { status: 'failed', role: 'source' }, 'list-migrations: failed');
  t.equal(row?.['error'], r.lines[0], 'list-migrations: with the same reason');
  t.ok(took < 6 * PEER_MS + 15_000, `it ended within the peer bound (${took} ms)`);
}

t.test('(a) a real source agent against a hostile target', async (t) => {
  const where = hostile.address;

  await t.test('garbage instead of the checks\' answer: an unknown frame type', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await peer.expect('offer');
      peer.raw(Buffer.concat([frameHeader(0x47, 3), Buffer.from('GET')]));
      await peer.closed;
    }, rm.peerLost(where, 'the checks', channelMessages.unknownFrame(0x47))),
  );

  await t.test('a malformed answer to the checks', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await peer.expect('offer');
      await peer.say({ t: 'checked', ok: 'maybe' });
      await peer.closed;
    }, rm.protocolBroken('malformed "checked" message')),
  );

  await t.test('a control frame that is not JSON, during the copy', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      await peer.expect('pass');
      peer.raw(controlFrame('{"t":"passed",'));
      await peer.closed;
    }, new RegExp(`^${escapeRe(rm.peerLost(where, 'the memory copy', channelMessages.controlNotJson('@')).split('@')[0]!)}`)),
  );

  // GARBAGE-WHILE-SENDING (FOUND, fixed in agent/migration/conversation.ts `input`): when the
  // target's bad frame arrived while the source was writing pages, the source reported "the
  // migration stream failed: Cannot call write after a stream was destroyed": the decoder's
  // error destroyed the socket without being handed to the encoder. Now the reason names the frame.
  await t.test('garbage while the source is sending pages: the reason names the frame', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      peer.raw(Buffer.concat([frameHeader(0x16, 3), Buffer.from([3, 1, 0])]));
      await peer.closed;
    }, rm.peerLost(where, 'the memory copy', channelMessages.unknownFrame(0x16))),
  );

  await t.test('a frame that lies about its size, during the copy: refused from its header', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      await peer.expect('pass');
      peer.raw(frameHeader(FRAME_PAGES, 0xfffffff0));
      await peer.closed;
    }, rm.peerLost(where, 'the memory copy', channelMessages.frameTooLarge(0xfffffff0, DEFAULT_MAX_FRAME))),
  );

  await t.test('an acknowledgement for the wrong pass', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      const pass = await peer.expect('pass');
      await peer.say({ t: 'passed', n: Number(pass['n']) + 1 });
      await peer.closed;
    }, rm.protocolBroken('"passed" where pass 1\'s acknowledgement belongs')),
  );

  let sourceDigest = '';
  await t.test('a digest that never matches', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      const final = await acceptUntilFinal(peer);
      sourceDigest = String(final['digest']);
      await peer.say({ t: 'mismatch', digest: WRONG_DIGEST });
      await peer.closed;
    }, new RegExp(`^${escapeRe(rm.digestMismatch('0000000000000000', WRONG_DIGEST)).replace('0000000000000000', '[0-9a-f]{16}')}$`)),
  );
  t.match(sourceDigest, /^[0-9a-f]{16}$/, 'the source sent its digest before the verdict');

  await t.test('"verified" without checking (the source\'s own digest echoed), then a failure at the resume', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      const final = await acceptUntilFinal(peer);
      await peer.say({ t: 'verified', digest: final['digest'] });
      await peer.expect('resume');
      await peer.say({ t: 'failed', reason: 'no memory was written here' });
      await peer.closed;
    }, rm.targetFailed(where, 'no memory was written here')),
  );

  await t.test('a target that stops reading: the source\'s writes stall, it gives up after the peer bound', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      peer.stopReading();
      await peer.closed;
    }, rm.peerLost(where, 'the memory copy', channelMessages.stalled(PEER_MS / 1000))),
  );

  await t.test('a target that goes silent after the offer', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await peer.expect('offer');
      await peer.closed;
    }, rm.peerTimeout(where, 'the checks', PEER_MS / 1000)),
  );

  await t.test('a target that goes silent at the end of a pass', (t) =>
    againstHostile(t, 'ldg1', async (peer) => {
      await acceptUpToPrepare(peer);
      await peer.expect('pass');
      // Reading on (the source's pages and its cancel), answering nothing.
      while (true) await peer.next(60_000);
    }, rm.peerTimeout(where, 'the end of a pass', PEER_MS / 1000)),
  );

  await t.test('after all that, a retry to a real target agent succeeds', async (t) => {
    await migrateOk(t, a, b, 'ldg1', 'the retry');
    await absent(t, a, 'ldg1', 'after the retry');
    t.match(await b.listDomain('ldg1'), { state: 'active', flags: '-n----' }, 'the real target runs it');
  });
});

/**
 * VERIFIED-LIE (FOUND, fixed in agent/migration/source.ts stopAndCopy): the source took
 * `verified {digest}` as the target's word without comparing the digest to its own, so a
 * target that said "verified" for memory it did not hold got the resume, and on its
 * `resumed` the source destroyed its guest: the domain was lost. A verdict whose digest is
 * not the source's is now a mismatch. The case uses a domain of its own (ldg2).
 */
t.test('(a) a target whose "verified" contradicts the source\'s digest: the migration fails, the guest runs on (it was lost before)', async (t) => {
  await a.domain('ldg2', 'active', { vars: { 'sim-working-set': '2M', 'sim-fill': 'random', 'sim-dirty-rate': '0' } });
  await againstHostile(t, 'ldg2', async (peer) => {
    await acceptUpToPrepare(peer);
    await acceptUntilFinal(peer);
    await peer.say({ t: 'verified', digest: WRONG_DIGEST });
    // The lie goes on: told to resume, it says it did.
    await peer.expect('resume');
    await peer.say({ t: 'resumed', runningMs: 1 });
    await peer.closed;
    // The reason must name the digest the target claimed (digestMismatch's words, or others).
  }, new RegExp(WRONG_DIGEST));
});

// ---------------------------------------------------------------------------------------------
// (b) A hostile source against a real target agent

/** What a target has free and holds: its devices and its domains (compared before and after). */
async function resources(agent: AgentProc): Promise<string> {
  const devices = await agent.must(request('list-devices'));
  return JSON.stringify({ devices: devices.commands[0]?.data.map((d) => d.envelope), domains: await agent.domainNames() }, (_k, v: unknown) => (v instanceof Map ? [...v] : v));
}

/** The target's log line `message` with field `key` holding `value` (as log.ts quotes it). */
function loggedField(agent: AgentProc, message: string, key: string, value: string | RegExp): boolean {
  return (agent.stdout() + agent.stderr()).split('\n').some((line) => {
    if (!line.includes(message)) return false;
    const m = new RegExp(` ${key}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(line);
    const v = m ? (m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/\\(.)/g, '$1') : m[1]!) : undefined;
    return v !== undefined && (typeof value === 'string' ? v === value : value.test(v));
  });
}

const ABANDONED = 'migration abandoned on the target';

t.test('(b) a hostile source against a real target agent', async (t) => {
  const source = await startHostileSource(t, 'gamma', 'ldg9');
  const before = await resources(b);
  let serial = 0;

  /** Open a channel, get the checks and the prepare step done: the target now holds ldg9 (flag t). */
  const prepared = async (t: Test): Promise<HostilePeer> => {
    const peer = await source.connect(b);
    await peer.say({ t: 'offer', id: `hostile-${++serial}`, offer: source.offer('ldg9') });
    t.match(await peer.expect('checked'), { ok: true }, 'the target\'s checks pass');
    await peer.say({ t: 'prepare' });
    await peer.expect('prepared');
    t.equal((await b.listDomain('ldg9'))?.['flags']?.[5], 't', 'the target reserved ldg9 (flag t)');
    return peer;
  };
  /** The target closes the channel, removes what it received (nothing of ldg9 left) and logs why. */
  const cleanedUp = async (t: Test, peer: HostilePeer, why: string | RegExp): Promise<void> => {
    const started = Date.now();
    // (A source that stopped reading reads again, to see the close.)
    peer.socket.resume();
    const closed = await Promise.race([peer.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 4 * PEER_MS + 5000))]);
    t.ok(closed, `the target closed the channel (${Date.now() - started} ms after the last step)`);
    await waitFor(async () => (await b.listDomain('ldg9')) === undefined, 5000, 'the target removing ldg9');
    await absent(t, b, 'ldg9', 'the target');
    t.equal(await resources(b), before, 'the target\'s devices and domains are as before');
    await waitFor(() => loggedField(b, ABANDONED, 'id', `hostile-${serial}`), 5000, 'the target logging the abandonment');
    t.ok(loggedField(b, ABANDONED, 'reason', why), `it logged why: ${String(why)}`);
  };

  await t.test('a frame of unknown type after the prepare step', async (t) => {
    const peer = await prepared(t);
    peer.raw(Buffer.concat([frameHeader(9, 4), Buffer.from('junk')]));
    await cleanedUp(t, peer, channelMessages.unknownFrame(9));
  });

  await t.test('a page batch that claims more pages than it holds', async (t) => {
    const peer = await prepared(t);
    const payload = Buffer.alloc(4 + 5);
    payload.writeUInt32BE(1000, 0); // 1000 pages announced, one zero page's entry sent
    peer.raw(Buffer.concat([frameHeader(FRAME_PAGES, payload.length), payload]));
    await cleanedUp(t, peer, channelMessages.batchLength(payload.length, 1000));
  });

  await t.test('a frame that claims 4 GiB: refused from its header', async (t) => {
    const peer = await prepared(t);
    peer.raw(frameHeader(FRAME_CONTROL, 0xffffffff));
    await cleanedUp(t, peer, channelMessages.frameTooLarge(0xffffffff, DEFAULT_MAX_FRAME));
  });

  await t.test('a digest that never matches: mismatch, again, then a resume it refuses', async (t) => {
    const peer = await prepared(t);
    const digest = new RunningDigest();
    const enc = peer.conv.encoder;
    for (const index of source.guest.touchedIndexes()) if (enc.addPage(source.guest, index, digest)) await enc.flush();
    await enc.flush();
    await peer.say({ t: 'pass', n: 1 });
    t.same(await peer.expect('passed'), { t: 'passed', n: 1 }, 'the pass is written');
    for (const attempt of [1, 2]) {
      await peer.say({ t: 'final', digest: WRONG_DIGEST, runtime: source.guest.runtime() });
      t.same(await peer.expect('mismatch'), { t: 'mismatch', digest: digest.hex }, `final ${attempt}: the target answers mismatch with its own digest`);
    }
    // The source pretends it matched.
    await peer.say({ t: 'resume' });
    await cleanedUp(t, peer, rm.protocolBroken('"resume" in state receiving'));
    t.ok(loggedField(b, 'migration digest mismatch', 'source', WRONG_DIGEST), 'the target logged the mismatch');
  });

  await t.test('a source that stops reading the target\'s answers and keeps asking: the target gives up', async (t) => {
    const peer = await prepared(t);
    peer.stopReading();
    // Pings, 8 to a write (never more than the 16 unanswered messages a side may queue), as
    // fast as this process writes them, answers unread. The target answers each with a small
    // pong: either it falls behind and more than 16 questions wait for it (refused: a source
    // may not queue more), or its answers fill the sockets and its writes stall for the peer
    // bound. (Paced slower, the sockets took over 2.6 MB of unread pongs in 20 s without a
    // stall: a target writes little, so a source that stops reading is mostly a silent one.)
    const pings = Buffer.concat(Array.from({ length: 8 }, () => controlFrame('{"t":"ping"}')));
    const id = `hostile-${serial}`;
    const deadline = Date.now() + 20_000;
    let sent = 0;
    while (Date.now() < deadline && !peer.conv.closedBy && !loggedField(b, ABANDONED, 'id', id)) {
      for (let i = 0; i < 200 && !peer.conv.closedBy; i++) {
        peer.raw(pings);
        sent += 8;
        await new Promise((r) => setImmediate(r));
      }
    }
    const why = new RegExp(`^(${escapeRe(channelMessages.stalled(PEER_MS / 1000))}|${escapeRe(rm.protocolBroken('more than 16 control messages unanswered'))})$`);
    await cleanedUp(t, peer, why);
    t.pass(`the target gave the channel up after ${sent} pings`);
  });

  await t.test('a silent source: the received domain is removed after twice the peer bound', async (t) => {
    const peer = await prepared(t);
    const started = Date.now();
    await cleanedUp(t, peer, rm.sourceSilent('gamma', (2 * PEER_MS) / 1000));
    t.ok(Date.now() - started >= 2 * PEER_MS - 200, `not before the bound (${Date.now() - started} ms)`);
  });
});
