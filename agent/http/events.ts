/**
 * `GET /api/events`: Server-Sent Events carrying the XML interface's events
 * (every class) as JSON. Each event gets an increasing `id:`; a bounded replay
 * buffer lets a reconnecting browser (`Last-Event-ID`) receive what it missed;
 * a heartbeat comment keeps proxies from closing idle streams; a reader whose
 * unsent output passes a bound is cut off, as on the XML side, so one stalled
 * browser cannot make the agent hold an unbounded queue.
 */
import type { Request, RequestHandler, Response } from 'express';
import { EVENT_CLASSES, type LdmEvent } from '../events/bus.ts';
import type { Envelope, Item } from '../xml/document.ts';
import type { HttpDeps } from './deps.ts';

export interface EventsTuning {
  /** How many past events a reconnect can resume from. */
  replay: number;
  /** Interval of the `: heartbeat` comment. */
  heartbeatMs: number;
  /** Unsent bytes (res.writableLength) past which a stream is closed. */
  maxPendingBytes: number;
}

export const EVENTS_DEFAULTS: EventsTuning = { replay: 1000, heartbeatMs: 15_000, maxPendingBytes: 1024 * 1024 };

/** One event as the browser receives it. */
export interface JsonEvent {
  id: number;
  class: string;
  action: string;
  /** The first domain the event names, for the common case of one. */
  domain: string | null;
  /** Its ldom_info properties (a progress event's progress, status, source), else empty. */
  properties: Record<string, string>;
  /** Everything the LDM event carries, item by item. */
  domains: { name: string; items: JsonItem[] }[];
  items: JsonItem[];
}

interface JsonItem {
  type: string;
  props: Record<string, string>;
  rasd: Record<string, string>;
}

const jsonItem = (it: Item): JsonItem => ({ type: it.type, props: Object.fromEntries(it.props), rasd: Object.fromEntries(it.rasd) });

function toJson(id: number, ev: LdmEvent): JsonEvent {
  const env: Envelope = ev.envelope;
  const domains = env.contents.map((c) => ({ name: c.id, items: c.sections.flatMap((s) => s.items.map(jsonItem)) }));
  const first = domains[0];
  const info = first?.items.find((i) => i.type === 'ldom_info');
  return {
    id,
    class: ev.eventClass,
    action: ev.action,
    domain: first?.name ?? null,
    properties: info?.props ?? {},
    domains,
    items: env.sections.flatMap((s) => s.items.map(jsonItem)),
  };
}

/** An id from `Last-Event-ID` (header, or `lastEventId` query for clients that cannot set headers). */
function lastEventId(req: Request): number | null {
  const raw = req.get('last-event-id') ?? (typeof req.query['lastEventId'] === 'string' ? req.query['lastEventId'] : undefined);
  if (raw === undefined || !/^\d{1,15}$/.test(raw.trim())) return null;
  return Number(raw.trim());
}

/** The SSE endpoint; `close()` ends every stream (the agent stops). */
export function eventsRoute(deps: HttpDeps, tuning: Partial<EventsTuning> = {}): { handler: RequestHandler; close(): void } {
  const opts = { ...EVENTS_DEFAULTS, ...tuning };
  // Frames already rendered: each event is serialized once, whoever receives it.
  const replay: { id: number; frame: string }[] = [];
  const streams = new Set<Response>();
  let nextId = 1;

  const send = (res: Response, frame: string): void => {
    if (res.writableEnded || res.destroyed) return;
    res.write(frame);
    if (res.writableLength > opts.maxPendingBytes) {
      deps.log.warn('slow event stream closed', { pending: res.writableLength });
      streams.delete(res);
      res.destroy();
    }
  };

  const subscription = deps.bus.subscribe((ev) => {
    const id = nextId++;
    const frame = `id: ${id}\nevent: ldm\ndata: ${JSON.stringify(toJson(id, ev))}\n\n`;
    replay.push({ id, frame });
    if (replay.length > opts.replay) replay.shift();
    for (const res of streams) send(res, frame);
  }, new Set(EVENT_CLASSES));

  const heartbeat = setInterval(() => {
    for (const res of streams) send(res, ': heartbeat\n\n');
  }, opts.heartbeatMs);
  heartbeat.unref();

  const handler: RequestHandler = (req, res) => {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // Some proxies (nginx) buffer responses unless told not to; a stream must flow.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    req.socket.setNoDelay(true);
    // Tell the browser how long to wait before it reconnects.
    res.write('retry: 2000\n\n');
    streams.add(res);
    const done = (): void => {
      streams.delete(res);
    };
    res.on('close', done);
    const after = lastEventId(req);
    if (after !== null) {
      // Missed events still in the buffer; older ones are gone (the page re-fetches its state anyway).
      for (const r of replay) if (r.id > after) send(res, r.frame);
    }
  };

  return {
    handler,
    close: () => {
      clearInterval(heartbeat);
      subscription.close();
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
