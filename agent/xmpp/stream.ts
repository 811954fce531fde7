/**
 * Incremental reader of one XMPP stream (RFC 6120 section 4): the stream
 * header, then top-level elements (stanzas, and bare LDM documents as
 * protocol.md section 1 describes), then the closing tag. One TCP read may
 * hold half an element or several; elements come out whole, in order.
 *
 * A stream restart (after STARTTLS or SASL) starts a new reader: the new
 * stream may begin with an XML declaration again.
 */
import { StringDecoder } from 'node:string_decoder';
import type { SaxesParser } from 'saxes';
import { ErrorCodes, XmlError } from '../errors.ts';
import { xmlMessages } from '../messages.ts';
import type { XmlLimits } from '../xml/limits.ts';
import { createParser, localName, TreeBuilder, type XmlElement } from '../xml/tree.ts';

export interface StreamHeader {
  /** As written, e.g. `stream:stream`. */
  name: string;
  attrs: Record<string, string>;
}

export interface StreamHandlers {
  header(header: StreamHeader): void;
  element(el: XmlElement): void;
  /** The peer closed its stream with `</stream:stream>`. */
  end(): void;
}

/** Feeding at most this much text at once bounds how far one write can overrun the limits. */
const SLICE = 16 * 1024;

export class StreamReader {
  private readonly parser: SaxesParser;
  private readonly decoder = new StringDecoder('utf8');
  private readonly builder: TreeBuilder;
  private opened = false;
  private closed = false;
  /** Bytes received since the last complete top-level element: the pending, unanswered input. */
  private pending = 0;

  constructor(
    private readonly limits: XmlLimits,
    private readonly handlers: StreamHandlers,
  ) {
    this.builder = new TreeBuilder(limits, (el) => {
      this.pending = 0;
      this.handlers.element(el);
    });
    this.parser = createParser(this.builder, {
      openTag: (tag) => {
        if (this.opened) return false;
        if (localName(tag.name) !== 'stream') {
          throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.notAStream(tag.name), this.parser.line);
        }
        this.opened = true;
        const attrs: Record<string, string> = Object.create(null);
        for (const k of Object.keys(tag.attributes)) attrs[k] = tag.attributes[k] as string;
        this.handlers.header({ name: tag.name, attrs });
        return true;
      },
      closeTag: () => {
        if (this.builder.open) return false;
        this.closed = true;
        this.handlers.end();
        return true;
      },
    });
  }

  /** True while part of a top-level element has been read but not all of it. */
  get midElement(): boolean {
    return this.builder.open;
  }

  /**
   * Feed bytes from the socket. Throws XmlError on malformed input or a
   * limit; the caller answers with a stream error and closes.
   */
  write(chunk: Buffer): void {
    if (this.closed) return;
    for (let off = 0; off < chunk.length && !this.closed; off += SLICE) {
      const slice = chunk.subarray(off, off + SLICE);
      this.pending += slice.length;
      if (this.pending > this.limits.maxBytes) {
        throw new XmlError(ErrorCodes.XML_LIMIT, xmlMessages.tooLarge(this.limits.maxBytes), this.parser.line);
      }
      this.parser.write(this.decoder.write(slice));
    }
  }
}
