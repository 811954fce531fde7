/**
 * Incremental reader of one XMPP stream (RFC 6120 section 4): the stream
 * header, then top-level elements (stanzas, and bare LDM documents as
 * protocol.md section 1 describes), then the closing tag. One TCP read may
 * hold half an element or several; elements come out whole, in order.
 *
 * Between two top-level elements a peer may write what an XML file holds
 * around its document: whitespace, comments, processing instructions and an
 * XML declaration. Clients send requests as files are written and as the
 * guides print them, `<?xml version="1.0"?>` first. saxes reads the whole
 * stream as one document, in which a declaration may only come first, so a
 * small lexical scanner runs ahead of it: it follows tags, comments, CDATA
 * and PIs just far enough to know what is at the top level, takes the
 * declarations found there out of what saxes is given, and refuses text and
 * DOCTYPEs there. It validates nothing else: saxes does. A read is given to
 * saxes whole (slicing it at every document would cost saxes speed on
 * V8's sliced strings); only a declaration splits it.
 *
 * A top-level start tag can be refused by its name before its content is
 * parsed (`admit`), and while the reader is paused complete elements wait in
 * it instead of being delivered: the connection pauses its socket at the
 * same time, so at most the rest of one read waits.
 *
 * A stream restart (after STARTTLS or SASL) starts a new reader: the new
 * stream may begin with an XML declaration again.
 *
 * A stream may also end in binary (a migration-channel switch, README "The
 * service:"): when the `last` handler claims a complete element, nothing after it
 * is parsed, and the raw bytes that followed it in the same read are handed over
 * with it (`rest`). To find them the reader keeps, for the read being scanned,
 * where each top-level element ends in the text, and decodes UTF-8 itself so that
 * it knows which bytes of the read that text came from.
 */
import { isUtf8 } from 'node:buffer';
import type { SaxesParser } from 'saxes';
import { ErrorCodes, XmlError } from '../errors.ts';
import { channelMessages, xmlMessages } from '../messages.ts';
import type { XmlLimits } from '../xml/limits.ts';
import { createParser, localName, TreeBuilder, type XmlElement } from '../xml/tree.ts';

export interface StreamHeader {
  /** As written, e.g. `stream:stream`. */
  name: string;
  attrs: Record<string, string>;
  /** True for a header inside a stream that already has one: always a protocol error. */
  again: boolean;
}

export interface StreamHandlers {
  header(header: StreamHeader): void;
  /**
   * A top-level element's start tag was read (its content not yet): the
   * handler may refuse it by calling `stop()` on the reader.
   */
  admit?(name: string): void;
  /**
   * A complete top-level element, and about how many bytes it took on the wire. `rest`
   * is set for the element `last` claimed: the raw bytes that followed it in the read.
   */
  element(el: XmlElement, bytes: number, rest?: Buffer): void;
  /**
   * Asked of each complete top-level element as soon as it is parsed (even while the
   * reader is paused): true makes it the stream's last element. The reader then
   * parses nothing more and hands the element over with the bytes that followed it.
   */
  last?(el: XmlElement): boolean;
  /** The peer closed its stream with `</stream:stream>`. */
  end(): void;
}

/** Feeding at most this much text at once bounds how far one write can overrun the limits. */
const SLICE = 16 * 1024;
/** A real XML declaration is under 60 characters; one this long is something else. */
const MAX_DECLARATION = 256;

// Scanner states.
/** Between top-level items (or in the prolog, before the header). */
const TOP = 0;
/** `<` at the top level, until the next characters say what it starts. */
const TOP_MARKUP = 1;
/** An XML declaration between documents: checked, then dropped. */
const DECLARATION = 2;
const TEXT = 3;
/** `<` inside an element. */
const MARKUP = 4;
/** `<!` inside an element: a comment, CDATA, or something saxes will refuse. */
const BANG = 5;
const COMMENT = 6;
const CDATA = 7;
const PI = 8;
const START_TAG = 9;
const END_TAG = 10;
/** `<!` followed by anything else: saxes refuses it; skip to `>` meanwhile. */
const OTHER_DECL = 11;
/** After `</stream:stream>` (or a self-closed header): nothing more is read. */
const DONE = 12;

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const QUOT = 0x22;
const APOS = 0x27;
const QUESTION = 0x3f;
const BANG_CHAR = 0x21;
const DASH = 0x2d;
const RBRACKET = 0x5d;
const BOM = 0xfeff;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;

const DECL_START = '<?xml';
const COMMENT_START = '<!--';
const DOCTYPE_START = '<!DOCTYPE';
const CDATA_START = '[CDATA[';
const DECLARATION_SYNTAX =
  /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])([^"']*)\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([^"']*)\3)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(yes|no)\5)?[ \t\r\n]*\?>$/;
/** The rest of a start tag up to its `>`: unambiguous alternatives, so a miss costs linear time. */
const TAG_REST = /(?:[^"'>]|"[^"]*"|'[^']*')*>/y;

/** Thrown through saxes to abandon the rest of a write once the reader is stopped. */
const STOP = Symbol('stream reader stopped');

export class StreamReader {
  private readonly parser: SaxesParser;
  /** The start of a UTF-8 character cut by the end of the last slice (at most 3 bytes). */
  private held: Buffer | undefined;
  private readonly builder: TreeBuilder;
  private limits: XmlLimits;
  /** saxes has read the header. */
  private opened = false;
  /** The scanner has passed the header's start tag. */
  private headerFramed = false;
  private closed = false;
  private stopped = false;
  private isPaused = false;
  /** Complete elements read while paused, in order. */
  private readonly waiting: { el: XmlElement; bytes: number; rest?: Buffer }[] = [];
  /** `last` claimed an element: nothing more is parsed. */
  private detached = false;
  // Where the text being scanned came from, to find the bytes after an element (`last`).
  /** The read, and where in it the slice being scanned starts. */
  private chunk: Buffer = Buffer.alloc(0);
  private sliceStart = 0;
  /** Bytes of the scanned text that came before the slice: the carry, and the held start of a character. */
  private bytesBeforeSlice = 0;
  private text = '';
  /** Where top-level elements end in `text`, in order; `endsTaken` of them are delivered. */
  private readonly ends: number[] = [];
  private endsTaken = 0;
  /** The stream ended while elements were waiting: `end` follows them. */
  private endWaiting = false;
  /** Bytes received since the last complete top-level item: the pending, unanswered input. */
  private pending = 0;
  private state = TOP;
  /** Elements open inside the current top-level element. */
  private depth = 0;
  /** The start of top-level markup not yet classified, carried into the next read. */
  private carry = '';
  /** Characters after `<!` inside an element, until they say what the markup is. */
  private bang = '';
  /** Quote character inside a start tag, or 0. */
  private quote = 0;
  /** Previous character: `/` before `>` closes an empty element, `?` before `>` ends a PI. */
  private prev = 0;
  /** Run of `-` (comment) or `]` (CDATA) just read. */
  private run = 0;

  constructor(
    limits: XmlLimits,
    private readonly handlers: StreamHandlers,
  ) {
    this.limits = limits;
    this.builder = new TreeBuilder(limits, (el) => this.onRoot(el));
    this.parser = createParser(this.builder, {
      openTag: (tag) => {
        if (this.stopped) throw STOP;
        if (this.builder.open) return false;
        const attrs: Record<string, string> = Object.create(null);
        if (!this.opened) {
          if (localName(tag.name) !== 'stream') {
            throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.notAStream(tag.name), this.parser.line);
          }
          this.opened = true;
          this.pending = 0;
          for (const k of Object.keys(tag.attributes)) attrs[k] = tag.attributes[k] as string;
          this.handlers.header({ name: tag.name, attrs, again: false });
        } else if (localName(tag.name) === 'stream') {
          // A second header would otherwise open an element that swallows every later document.
          for (const k of Object.keys(tag.attributes)) attrs[k] = tag.attributes[k] as string;
          this.handlers.header({ name: tag.name, attrs, again: true });
          if (!this.stopped) throw new XmlError(ErrorCodes.XML_STRUCTURE, xmlMessages.secondHeader(), this.parser.line);
        } else {
          this.handlers.admit?.(tag.name);
          if (!this.stopped) return false;
        }
        if (this.stopped) throw STOP;
        return true;
      },
      closeTag: () => {
        if (this.builder.open) return false;
        this.closed = true;
        if (this.waiting.length > 0) this.endWaiting = true;
        else this.handlers.end();
        return true;
      },
    });
  }

  /** True while part of a top-level element (or of markup between elements) has been read but not all of it. */
  get midElement(): boolean {
    return this.headerFramed && this.state !== TOP && this.state !== DONE;
  }

  /** True between `pause()` and `resume()`. */
  get paused(): boolean {
    return this.isPaused;
  }

  /** Limits for the elements still to come (the connection widens them once the peer has logged in). */
  setLimits(limits: XmlLimits): void {
    this.limits = limits;
    this.builder.limits = limits;
  }

  /** Deliver no more elements until `resume()`; those completed meanwhile wait here. */
  pause(): void {
    this.isPaused = true;
  }

  /** Deliver what waited (until a handler pauses again). */
  resume(): void {
    this.isPaused = false;
    while (this.waiting.length > 0 && !this.isPaused && !this.stopped) {
      const { el, bytes, rest } = this.waiting.shift()!;
      this.handlers.element(el, bytes, rest);
    }
    if (this.endWaiting && this.waiting.length === 0 && !this.stopped) {
      this.endWaiting = false;
      this.handlers.end();
    }
  }

  /** Abandon the stream: nothing more is parsed or delivered, now or later. */
  stop(): void {
    this.stopped = true;
    this.waiting.length = 0;
  }

  /**
   * Feed bytes from the socket. Throws XmlError on malformed input or a
   * limit; the caller answers with a stream error and closes.
   */
  write(chunk: Buffer): void {
    if (this.closed || this.stopped || this.detached) return;
    this.chunk = chunk;
    try {
      for (let off = 0; off < chunk.length && !this.closed && !this.stopped; ) {
        const step = Math.min(SLICE, this.limits.maxBytes);
        const slice = chunk.subarray(off, off + step);
        this.sliceStart = off;
        off += slice.length;
        this.pending += slice.length;
        if (this.pending > this.limits.maxBytes) {
          throw new XmlError(ErrorCodes.XML_LIMIT, xmlMessages.tooLarge(this.limits.maxBytes), this.parser.line);
        }
        this.scan(this.decode(slice));
      }
    } catch (err) {
      // Once stopped, whatever saxes makes of the rest (TLS bytes after <starttls/>, say) is nobody's business.
      if (err === STOP || this.stopped) return;
      throw err;
    }
  }

  /**
   * The text of a slice, less the start of a character the slice cuts (kept for
   * the next one): as StringDecoder does, but the reader knows how many bytes it
   * held, which finding the bytes after an element needs.
   */
  private decode(slice: Buffer): string {
    const held = this.held;
    const buf = held ? Buffer.concat([held, slice]) : slice;
    const cut = completeUtf8(buf);
    this.held = cut < buf.length ? Buffer.from(buf.subarray(cut)) : undefined;
    this.bytesBeforeSlice = held?.length ?? 0;
    return buf.toString('utf8', 0, cut);
  }

  private onRoot(el: XmlElement): void {
    if (this.stopped) throw STOP;
    const bytes = this.pending;
    this.pending = 0;
    const end = this.ends[this.endsTaken++];
    let rest: Buffer | undefined;
    if (this.handlers.last?.(el)) {
      rest = this.bytesAfter(end);
      this.detached = true;
    }
    if (this.isPaused || this.waiting.length > 0) this.waiting.push({ el, bytes, rest });
    else this.handlers.element(el, bytes, rest);
    if (this.stopped || this.detached) throw STOP;
  }

  /** The raw bytes of the read after the element that ends at `end` in the scanned text. */
  private bytesAfter(end: number | undefined): Buffer {
    // The element's text is XML, so it re-encodes to the bytes it came from; the text
    // before the slice (carry, held bytes) is counted apart. The byte found must be its `>`.
    // Invalid UTF-8 in this read decodes to U+FFFD, whose 3 bytes are never fewer than the
    // bytes it stands for: the point found is then at or past the real one, so a read that is
    // not valid UTF-8 up to it is refused (the byte there may be a `>` by chance).
    const at = end === undefined ? -1 : this.sliceStart + Buffer.byteLength(this.text.slice(0, end)) - this.bytesBeforeSlice;
    if (at < 1 || at > this.chunk.length || this.chunk[at - 1] !== GT || !this.validUpTo(at)) {
      throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, channelMessages.switchBadUtf8(), this.parser.line);
    }
    return this.chunk.subarray(at);
  }

  /** Whether the slice's bytes up to `at` are UTF-8 (less the end of a character an earlier slice began). */
  private validUpTo(at: number): boolean {
    let from = this.sliceStart;
    while (from < at && from < this.sliceStart + 3 && (this.chunk[from]! & 0xc0) === 0x80) from++;
    return isUtf8(this.chunk.subarray(from, at));
  }

  /**
   * Follow decoded input through the scanner, then give it to saxes, less
   * the declarations found between documents.
   */
  private scan(input: string): void {
    const text = this.carry === '' ? input : this.carry + input;
    if (this.carry !== '') this.bytesBeforeSlice += Buffer.byteLength(this.carry);
    this.carry = '';
    this.text = text;
    this.ends.length = 0;
    this.endsTaken = 0;
    const n = text.length;
    let fed = 0; // text[0, fed) has been given to saxes or dropped
    let mark = 0; // where the top-level markup being classified starts
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case TOP: {
          const c = text.charCodeAt(i);
          if (c === LT) {
            mark = i++;
            this.state = TOP_MARKUP;
          } else if (isSpace(c) || c === BOM || !this.headerFramed) {
            // In the prolog saxes judges what it is given (text before the header is its error).
            i++;
          } else {
            this.feed(text, fed, i);
            throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, xmlMessages.textBetweenDocuments(), this.parser.line);
          }
          break;
        }
        case TOP_MARKUP: {
          i++;
          const refused = this.classify(text, mark, i);
          if (refused) {
            // What came before is read first: its documents are answered in order, its lines counted.
            this.feed(text, fed, mark);
            throw refused === DOCTYPE_START
              ? new XmlError(ErrorCodes.XML_DOCTYPE, xmlMessages.doctype(), this.parser.line)
              : new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, xmlMessages.textBetweenDocuments(), this.parser.line);
          }
          break;
        }
        case DECLARATION: {
          const end = text.indexOf('?>', i);
          i = end < 0 ? n : end + 2;
          if (i - mark > MAX_DECLARATION) {
            this.feed(text, fed, mark);
            throw this.badDeclaration();
          }
          if (end >= 0) {
            this.feed(text, fed, mark);
            this.endDeclaration(text.slice(mark, i));
            fed = i;
            this.state = TOP;
          }
          break;
        }
        case TEXT: {
          i = this.scanContent(text, i);
          break;
        }
        case MARKUP: {
          const c = text.charCodeAt(i++);
          if (c === SLASH) this.state = END_TAG;
          else if (c === QUESTION) this.enter(PI);
          else if (c === BANG_CHAR) {
            this.bang = '';
            this.state = BANG;
          } else this.enterStartTag(c);
          break;
        }
        case BANG: {
          this.bang += text[i++];
          if (this.bang === '--') this.enter(COMMENT);
          else if (this.bang === CDATA_START) this.enter(CDATA);
          else if (this.bang !== '-' && !CDATA_START.startsWith(this.bang)) this.state = OTHER_DECL;
          break;
        }
        case COMMENT:
        case CDATA: {
          // Ends at the first `-->` (`]]>`); a `--` inside a comment is saxes' business.
          const closer = this.state === COMMENT ? DASH : RBRACKET;
          while (i < n) {
            const c = text.charCodeAt(i++);
            if (c === GT && this.run >= 2) {
              this.leave();
              break;
            }
            this.run = c === closer ? this.run + 1 : 0;
          }
          break;
        }
        case PI: {
          while (i < n) {
            const c = text.charCodeAt(i++);
            if (c === GT && this.prev === QUESTION) {
              this.leave();
              break;
            }
            this.prev = c;
          }
          break;
        }
        case OTHER_DECL: {
          const gt = text.indexOf('>', i);
          i = gt < 0 ? n : gt + 1;
          if (gt >= 0) this.leave();
          break;
        }
        case START_TAG: {
          let ended = false;
          if (this.quote === 0) {
            // The whole rest of the tag in one native step when it is all here (the usual case).
            const from = i;
            TAG_REST.lastIndex = i;
            if (TAG_REST.test(text)) {
              i = TAG_REST.lastIndex;
              ended = true;
              if (i - 2 >= from) this.prev = text.charCodeAt(i - 2);
            }
          }
          // Otherwise character by character: the tag goes on in a later read.
          while (!ended && i < n) {
            const c = text.charCodeAt(i++);
            if (this.quote !== 0) {
              if (c === this.quote) this.quote = 0;
            } else if (c === QUOT || c === APOS) {
              this.quote = c;
            } else if (c === GT) {
              ended = true;
              break;
            }
            this.prev = c;
          }
          if (ended) this.endStartTag(this.prev === SLASH, i);
          break;
        }
        case END_TAG: {
          const gt = text.indexOf('>', i);
          if (gt < 0) {
            i = n;
            break;
          }
          i = gt + 1;
          if (this.depth === 0) {
            // `</stream:stream>`: saxes ends the stream; whatever follows is not read.
            this.feed(text, fed, i);
            this.state = DONE;
            return;
          }
          if (--this.depth > 0) this.state = TEXT;
          else {
            this.state = TOP;
            this.ends.push(i);
          }
          break;
        }
        case DONE:
          this.feed(text, fed, i);
          return;
      }
    }
    if (this.state === TOP_MARKUP || this.state === DECLARATION) {
      // Not yet known (or not yet complete): decided with the next read.
      this.feed(text, fed, mark);
      this.carry = text.slice(mark);
      this.state = TOP;
    } else {
      this.feed(text, fed, n);
    }
  }

  /**
   * Inside an element: the bulk of a document, whole start and end tags in
   * this read, without a trip through the state machine per tag.
   */
  private scanContent(text: string, from: number): number {
    let i = from;
    for (;;) {
      const lt = text.indexOf('<', i);
      if (lt < 0) return text.length;
      const c = text.charCodeAt(lt + 1);
      if (c === SLASH) {
        const gt = text.indexOf('>', lt + 2);
        if (gt < 0) {
          this.state = END_TAG;
          return lt + 2;
        }
        i = gt + 1;
        if (--this.depth === 0) {
          this.state = TOP;
          this.ends.push(i);
          return i;
        }
        continue;
      }
      // c !== c: the read ends right after `<`.
      if (c === c && c !== BANG_CHAR && c !== QUESTION) {
        TAG_REST.lastIndex = lt + 1;
        if (TAG_REST.test(text)) {
          i = TAG_REST.lastIndex;
          if (text.charCodeAt(i - 2) !== SLASH) this.depth++;
          continue;
        }
      }
      this.state = MARKUP;
      return lt + 1;
    }
  }

  /** A start tag ended just before `at`. */
  private endStartTag(empty: boolean, at: number): void {
    if (!this.headerFramed) {
      // The stream header: from here on the scanner is inside the stream.
      this.headerFramed = true;
      this.state = empty ? DONE : TOP;
    } else if (!empty) {
      this.depth++;
      this.state = TEXT;
    } else if (this.depth > 0) {
      this.state = TEXT;
    } else {
      // A top-level element written `<x/>`.
      this.state = TOP;
      this.ends.push(at);
    }
  }

  private enter(state: number): void {
    this.state = state;
    this.prev = 0;
    this.run = 0;
  }

  private enterStartTag(first: number): void {
    this.state = START_TAG;
    this.quote = first === QUOT || first === APOS ? first : 0;
    this.prev = first;
  }

  /** End of a comment, PI, CDATA section or other `<!` markup. */
  private leave(): void {
    this.state = this.depth > 0 ? TEXT : TOP;
  }

  /**
   * Decide what top-level `text[mark, end)` starts once it says enough, and
   * switch to scanning it as that. Returns what is refused there: a DOCTYPE,
   * or other `<!` markup (CDATA between documents is text).
   */
  private classify(text: string, mark: number, end: number): typeof DOCTYPE_START | 'markup' | undefined {
    const length = end - mark;
    if (length === 1) return undefined;
    const h = text.slice(mark, end);
    const second = h.charCodeAt(1);
    if (second === QUESTION) {
      if (length <= DECL_START.length && DECL_START.startsWith(h)) return undefined;
      if (length === DECL_START.length + 1 && h.startsWith(DECL_START) && isSpace(h.charCodeAt(length - 1))) {
        // Before the header the declaration is the stream's own: saxes reads it.
        this.state = this.headerFramed ? DECLARATION : PI;
        this.prev = 0;
        return undefined;
      }
      this.enter(PI);
      // What is read may end in `?` (`<??`, `<?x?`): its `>` then closes the PI.
      this.prev = h.charCodeAt(length - 1);
      return undefined;
    }
    if (second === BANG_CHAR) {
      if (h === COMMENT_START) this.enter(COMMENT);
      else if (h === DOCTYPE_START) return DOCTYPE_START;
      else if (COMMENT_START.startsWith(h) || DOCTYPE_START.startsWith(h)) return undefined;
      // Before the header saxes names what is wrong; between documents it is ours to refuse.
      else if (!this.headerFramed) this.state = OTHER_DECL;
      else return 'markup';
      return undefined;
    }
    if (second === SLASH) this.state = END_TAG;
    else this.enterStartTag(second);
    return undefined;
  }

  /** Give saxes `text[from, to)`; its handlers run now, synchronously. */
  private feed(text: string, from: number, to: number): void {
    if (to > from) this.parser.write(from === 0 && to === text.length ? text : text.slice(from, to));
  }

  /** Check a declaration found between documents; it is dropped, its line breaks kept for line numbers. */
  private endDeclaration(decl: string): void {
    const m = DECLARATION_SYNTAX.exec(decl);
    if (!m) throw this.badDeclaration();
    if (m[2] !== '1.0') throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, xmlMessages.xmlVersion(m[2]!), this.parser.line);
    const encoding = m[4];
    if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) {
      throw new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, xmlMessages.notUtf8(encoding), this.parser.line);
    }
    const lines = decl.split('\n').length - 1;
    if (lines > 0) this.parser.write('\n'.repeat(lines));
  }

  private badDeclaration(): XmlError {
    return new XmlError(ErrorCodes.XML_NOT_WELL_FORMED, xmlMessages.badDeclaration(), this.parser.line);
  }
}

/**
 * Length of `buf` up to the last whole UTF-8 character: a lead byte near the end
 * whose sequence goes past it starts a character the next read completes.
 * Anything invalid is left whole (it decodes to U+FFFD either way).
 */
function completeUtf8(buf: Buffer): number {
  const n = buf.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const b = buf[n - k]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > k ? n - k : n;
  }
  return n;
}
