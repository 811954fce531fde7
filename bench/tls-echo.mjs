// The baseline server of the transport benchmark (bench/transport.ts), run as its own
// process like the agent it stands beside: a node:tls server with the agent's key and
// certificate and the agent's TLS settings, that answers every REQUEST_BYTES bytes
// received with RESPONSE_BYTES bytes, in one write. No XMPP, no XML: what a request and
// its answer cost on this machine with TLS and Node alone.
//
//   node bench/tls-echo.mjs KEY.pem CERT.pem REQUEST_BYTES RESPONSE_BYTES
//
// Prints `TLS echo listening on 127.0.0.1:PORT`; stops on SIGTERM.
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const [keyFile, certFile, requestArg, responseArg] = process.argv.slice(2);
const requestBytes = Number(requestArg);
const responseBytes = Number(responseArg);
if (!keyFile || !certFile || !(requestBytes > 0) || !(responseBytes > 0)) {
  process.stderr.write('usage: node bench/tls-echo.mjs KEY.pem CERT.pem REQUEST_BYTES RESPONSE_BYTES\n');
  process.exit(2);
}

// Printable bytes, like an XML answer; one Buffer, written as the agent writes its answer: once.
const response = Buffer.alloc(responseBytes, 'x');
const sockets = new Set();
const server = tls.createServer(
  {
    key: readFileSync(keyFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    minVersion: 'TLSv1.2',
    // As the agent: ask for a client certificate without requiring one.
    requestCert: true,
    rejectUnauthorized: false,
  },
  (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let received = 0;
    socket.on('data', (chunk) => {
      received += chunk.length;
      while (received >= requestBytes) {
        received -= requestBytes;
        socket.write(response);
      }
    });
  },
);
// The agent sets TCP_NODELAY on every accepted socket; so do we.
server.on('connection', (raw) => raw.setNoDelay(true));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`TLS echo listening on 127.0.0.1:${server.address().port}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  for (const s of sockets) s.destroy();
});
