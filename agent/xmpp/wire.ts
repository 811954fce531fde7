/**
 * The XMPP elements the agent writes (RFC 6120), as text. Each is small and
 * fixed, so plain templates beat a builder; every variable part is escaped.
 */
import { escapeAttr as esc } from '../xml/encode.ts';

export const NS = {
  client: 'jabber:client',
  stream: 'http://etherx.jabber.org/streams',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  session: 'urn:ietf:params:xml:ns:xmpp-session',
  streamErrors: 'urn:ietf:params:xml:ns:xmpp-streams',
  stanzaErrors: 'urn:ietf:params:xml:ns:xmpp-stanzas',
} as const;

/** RFC 6120 section 4.9.3: the stream error conditions the agent uses. */
export type StreamErrorCondition =
  | 'not-well-formed'
  | 'restricted-xml'
  | 'policy-violation'
  | 'not-authorized'
  | 'connection-timeout'
  | 'invalid-namespace'
  | 'unsupported-stanza-type'
  | 'system-shutdown'
  | 'internal-server-error';

/** RFC 6120 section 4.7: the response stream header (with the XML declaration a new stream may carry). */
export function streamHeader(id: string, from: string, to?: string): string {
  return (
    `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}'` +
    ` id='${esc(id)}' from='${esc(from)}'${to ? ` to='${esc(to)}'` : ''} version='1.0' xml:lang='en'>`
  );
}

export interface Features {
  starttls?: 'required' | 'optional';
  mechanisms?: string[];
  bind?: boolean;
}

/** RFC 6120 sections 5.4.1, 6.4.1, 7.4: stream features. */
export function features(f: Features): string {
  let body = '';
  if (f.starttls) {
    body += `<starttls xmlns='${NS.tls}'>${f.starttls === 'required' ? '<required/>' : ''}</starttls>`;
  }
  if (f.mechanisms && f.mechanisms.length > 0) {
    body += `<mechanisms xmlns='${NS.sasl}'>${f.mechanisms.map((m) => `<mechanism>${esc(m)}</mechanism>`).join('')}</mechanisms>`;
  }
  if (f.bind) {
    // Session establishment is obsolete (RFC 6121) but old clients look for it; mark it optional.
    body += `<bind xmlns='${NS.bind}'/><session xmlns='${NS.session}'><optional/></session>`;
  }
  return `<stream:features>${body}</stream:features>`;
}

export const proceed = (): string => `<proceed xmlns='${NS.tls}'/>`;
export const tlsFailure = (): string => `<failure xmlns='${NS.tls}'/>`;

/** RFC 6120 section 6.4.6. */
export const saslSuccess = (): string => `<success xmlns='${NS.sasl}'/>`;

/** RFC 6120 section 6.5: SASL failure with its condition and an optional text. */
export function saslFailure(condition: 'not-authorized' | 'invalid-mechanism' | 'malformed-request' | 'aborted', text?: string): string {
  const t = text ? `<text xml:lang='en'>${esc(text)}</text>` : '';
  return `<failure xmlns='${NS.sasl}'><${condition}/>${t}</failure>`;
}

/** RFC 6120 section 4.9: a stream error, followed by the closing stream tag. */
export function streamError(condition: StreamErrorCondition, text?: string): string {
  const t = text ? `<text xmlns='${NS.streamErrors}' xml:lang='en'>${esc(text)}</text>` : '';
  return `<stream:error><${condition} xmlns='${NS.streamErrors}'/>${t}</stream:error></stream:stream>`;
}

export const streamClose = (): string => '</stream:stream>';

/** RFC 6120 section 7.6.1: the bound full JID. */
export function bindResult(id: string, jid: string): string {
  return `<iq type='result' id='${esc(id)}'><bind xmlns='${NS.bind}'><jid>${esc(jid)}</jid></bind></iq>`;
}

export const iqResult = (id: string): string => `<iq type='result' id='${esc(id)}'/>`;

/** RFC 6120 section 8.3: an iq error (the agent serves no other iq than bind and session). */
export function iqError(id: string, condition: 'service-unavailable' | 'bad-request' | 'not-allowed'): string {
  const type = condition === 'bad-request' ? 'modify' : 'cancel';
  return `<iq type='error' id='${esc(id)}'><error type='${type}'><${condition} xmlns='${NS.stanzaErrors}'/></error></iq>`;
}
