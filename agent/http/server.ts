/**
 * The web app's HTTP(S) server: an express 5 app with security headers
 * (helmet), a bounded JSON body, the JSON API, the event stream, the metrics
 * and the page. Every error answers JSON `{error: {code, message}}` with a
 * stable code; nothing of an exception's text or stack reaches a client.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../config.ts';
import { ErrorCodes } from '../errors.ts';
import { httpMessages } from '../messages.ts';
import { apiRoutes, httpError, LoginLimiter } from './api.ts';
import type { HttpDeps } from './deps.ts';
import { eventsRoute } from './events.ts';
import { createMetrics } from './metrics.ts';
import { pageRoutes } from './page.ts';

/** Request bodies are tiny (the one POST carries none); anything bigger is refused unread. */
export const MAX_BODY_BYTES = 16 * 1024;

export interface HttpServerOptions {
  listen: HostPort;
  /** PEM key and certificate: serve HTTPS (--http-tls). */
  tls?: { key: string; cert: string };
  /** The failed-login limiter (tests pass a small one). */
  limiter?: LoginLimiter;
}

export interface RunningHttpServer {
  address: { host: string; port: number };
  tls: boolean;
  close(): Promise<void>;
}

export async function createHttpServer(deps: HttpDeps, options: HttpServerOptions): Promise<RunningHttpServer> {
  const tls = options.tls !== undefined;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          connectSrc: ["'self'"],
          fontSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          // Over plain HTTP an upgrade would send the page's own requests to an HTTPS port that does not exist.
          ...(tls ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      strictTransportSecurity: tls,
    }),
  );
  app.use(express.json({ limit: MAX_BODY_BYTES }));

  // Whatever the event stream and the metrics subscribe for themselves is left out of ldm_event_subscribers.
  const before = deps.bus.size;
  let own = 0;
  const events = eventsRoute(deps);
  const metrics = createMetrics(deps, { ownSubscriptions: () => own });
  own = deps.bus.size - before;
  app.get('/api/events', events.handler);
  app.get('/metrics', metrics.handler);
  app.use(apiRoutes(deps, { tls, ...(options.limiter ? { limiter: options.limiter } : {}) }));
  app.use('/', pageRoutes());

  app.use((req: Request, res: Response) => httpError(res, 404, ErrorCodes.HTTP_NOT_FOUND, httpMessages.notFound(req.path)));
  // Express knows an error handler by its four parameters.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: unknown }).type;
    if (type === 'entity.too.large') return httpError(res, 413, ErrorCodes.HTTP_BODY_TOO_LARGE, httpMessages.bodyTooLarge(MAX_BODY_BYTES));
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) return httpError(res, 400, ErrorCodes.HTTP_BAD_REQUEST, httpMessages.badJson);
    deps.log.error(httpMessages.requestFailed, { error: err instanceof Error ? err.message : String(err) });
    if (res.headersSent) return void res.end();
    httpError(res, 500, ErrorCodes.HTTP_INTERNAL, httpMessages.internal);
  });

  const server: Server = tls ? createHttps({ key: options.tls!.key, cert: options.tls!.cert }, app) : createHttp(app);
  // A client that sends its request headers slowly does not hold a socket for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => reject(err);
    server.once('error', fail);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  server.on('error', (err) => deps.log.error(httpMessages.requestFailed, { error: err.message }));
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    tls,
    close: async () => {
      events.close();
      metrics.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Open event streams and idle keep-alive sockets would hold close() for ever.
      server.closeAllConnections();
      await closed;
    },
  };
}
