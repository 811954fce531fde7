/**
 * The adversarial probe's loads on an agent (issue 13), run as a process of
 * their own so that generating them does not slow down the client a test
 * measures: `node --import tsx probe-loads.ts PORT LOADS SECONDS`.
 *
 * LOADS is a comma list of:
 * - `reader`: a read user (viewer / viewer-password-2, from 127.0.0.3) who
 *   pipelines list-domain documents and never reads an answer;
 * - `flood`: 64 unauthenticated peers (127.0.4.1-64) each sending a stanza with
 *   200,000 children before login;
 * - `idle`: 300 connections (30 from each of 127.0.5.1-10) that send nothing.
 * A peer that is closed or refused comes back 100 ms later, as the probe's did.
 * Prints `loads running` once started; stops on SIGTERM or after SECONDS.
 */
import { once } from 'node:events';
import net from 'node:net';
import { HEADER, LIST_DOMAIN, onlineRawPeer } from './raw.ts';

const [portText, loadsText = 'reader,flood,idle', secondsText = '60'] = process.argv.slice(2);
const port = Number(portText);
const loads = new Set(loadsText.split(','));
let stopped = false;
const sockets = new Set<{ destroy(): void }>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function keepUp(n: number, body: (w: number) => Promise<void>): void {
  for (let w = 0; w < n; w++) {
    void (async () => {
      while (!stopped) {
        try {
          await body(w);
        } catch {
          // refused, cut off or timed out: come back
        }
        if (!stopped) await sleep(100);
      }
    })();
  }
}

/** A plain TCP connection from `localAddress`, settled once connected or closed. */
async function connect(localAddress: string): Promise<{ s: net.Socket; closed: Promise<unknown> }> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  sockets.add(s);
  s.on('error', () => {});
  s.resume(); // take whatever the agent answers
  const closed = once(s, 'close').then(() => sockets.delete(s));
  await Promise.race([once(s, 'connect'), closed]);
  return { s, closed };
}

if (loads.has('reader')) {
  keepUp(1, async () => {
    const p = await onlineRawPeer(port, 'viewer', 'viewer-password-2', '127.0.0.3');
    sockets.add(p);
    p.pause();
    const batch = LIST_DOMAIN.repeat(100);
    while (!p.closed && !stopped) {
      p.write(batch);
      await sleep(20);
    }
    sockets.delete(p);
    p.destroy();
  });
}

if (loads.has('flood')) {
  const stanza = Buffer.from(`<message to='x'>${'<b/>'.repeat(200_000)}</message>`);
  keepUp(64, async (w) => {
    const { s, closed } = await connect(`127.0.4.${w + 1}`);
    s.write(HEADER);
    while (!s.destroyed && s.writable && !stopped) {
      // Only as fast as the agent takes it: this process must not buffer the flood itself.
      if (!s.write(stanza)) await Promise.race([once(s, 'drain'), closed]);
      await sleep(50);
    }
  });
}

if (loads.has('idle')) {
  keepUp(300, async (w) => {
    const { closed } = await connect(`127.0.5.${(w % 10) + 1}`);
    await closed;
  });
}

const stop = () => {
  stopped = true;
  for (const s of sockets) s.destroy();
  setTimeout(() => process.exit(0), 200).unref();
};
process.on('SIGTERM', stop);
setTimeout(stop, Number(secondsText) * 1000).unref();
process.stdout.write('loads running\n');
