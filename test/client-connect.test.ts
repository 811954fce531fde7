// LdmClient.connect against a host that drops the SYN (a listener whose accept queue is
// full, its process never accepting): the connection never completes, so only the
// client's own bound can end the attempt. It must reject within `timeoutMs`, naming the
// bound, rather than wait for TCP's retries (minutes): a migration's settle question
// and `ldm -H` to an unreachable agent go through here.
import t from 'tap';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { clientMessages } from '../agent/messages.ts';
import { LdmClient } from '../agent/xmpp/client.ts';

t.test('connect to a host that drops the SYN rejects at its timeout', async (t) => {
  // A listener with a one-place accept queue whose event loop then spins: it never accepts.
  const listener = spawn(process.execPath, [
    '-e',
    "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{console.log(s.address().port);setTimeout(()=>{for(;;){}},50)})",
  ]);
  t.teardown(() => void listener.kill('SIGKILL'));
  const port = await new Promise<number>((resolve) => listener.stdout.once('data', (d: Buffer) => resolve(Number(String(d)))));
  await new Promise((r) => setTimeout(r, 200));
  // Fill the queue: these complete in the kernel; the next SYN is dropped.
  const fillers = Array.from({ length: 4 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
  t.teardown(() => fillers.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 200));

  const start = performance.now();
  const outcome = await Promise.race([
    LdmClient.connect({ host: '127.0.0.1', port, auth: { kind: 'password', user: 'u', password: 'p' }, timeoutMs: 500 }).then(
      (c) => (void c.close(), 'connected'),
      (err: Error) => err.message,
    ),
    new Promise<string>((r) => setTimeout(() => r('still waiting after 5 s'), 5000)),
  ]);
  const ms = performance.now() - start;
  t.equal(outcome, clientMessages.handshakeTimeout(500), 'rejected with the handshake timeout');
  t.ok(ms >= 450 && ms < 2000, `within the bound: ${ms.toFixed(0)} ms`);
});
