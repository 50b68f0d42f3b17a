/**
 * Splits the bytes beanstalkd sends into replies. A reply is one line, `WORD [ARG...]\r\n`; the three
 * that carry data (`RESERVED <id> <bytes>`, `FOUND <id> <bytes>`, `OK <bytes>`) are followed by that
 * many bytes and `\r\n`. Whether a reply has data is known from its first word alone, so the reader needs
 * nothing from the command that asked.
 *
 * Written for the hot path: the line end is found with the native `indexOf`, and a body that arrived in
 * one read is a view of the read buffer, not a copy. A body split over reads (most of them, once bodies
 * reach tens of KB: a read is at most 64 KiB) is collected as a list of the reads' pieces and joined
 * once, when its last byte arrives: joining the leftover with every new read instead copied each byte
 * of a large body about twice (the profile's `_copyActual`, ~14 us per 60 KB job).
 */

const CR = 0x0d;
const LF = 0x0a;
/** Replies are short; a line this long without `\r\n` means the stream is not beanstalkd's. */
const MAX_LINE_BYTES = 1_024;
/** A data block's length, as beanstalkd writes it. */
const DIGITS = /^[0-9]{1,15}$/;
/** The replies followed by a data block. */
const WITH_BODY = new Set(['RESERVED', 'FOUND', 'OK']);

/** One reply: its words, and its data block when it has one. */
export type ReplyHandler = (words: string[], body: Buffer | undefined) => void;

/** Thrown by {@link ReplyReader.push} when the bytes cannot be beanstalkd replies. */
export class MalformedReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReplyError';
  }
}

/** A reply whose line has arrived and whose data block has not, yet. */
interface PendingBody {
  readonly words: string[];
  readonly word: string;
  /** The block's length, without its `\r\n`. */
  readonly size: number;
  /** The pieces of the block (and its `\r\n`) so far, in order. */
  readonly parts: Buffer[];
  /** Their total length. */
  have: number;
}

/** Feeds reads in with {@link push}; each complete reply goes to `onReply`, in order. */
export class ReplyReader {
  readonly #onReply: ReplyHandler;
  /** The start of a reply line that has not fully arrived yet (short: a line is at most ~1 KiB). */
  #pendingLine: Buffer | undefined;
  /** A data block that has not fully arrived yet. */
  #pendingBody: PendingBody | undefined;

  constructor(onReply: ReplyHandler) {
    this.#onReply = onReply;
  }

  /** Parses `chunk` (after anything left over) and hands out every complete reply in it. */
  push(chunk: Buffer): void {
    let offset = 0;
    const body = this.#pendingBody;
    if (body !== undefined) {
      const missing = body.size + 2 - body.have;
      if (chunk.length < missing) {
        // Still not whole: keep the read as it is, no copy.
        body.parts.push(chunk);
        body.have += chunk.length;
        return;
      }
      this.#pendingBody = undefined;
      body.parts.push(chunk.subarray(0, missing));
      const whole = Buffer.concat(body.parts, body.size + 2);
      if (whole[body.size] !== CR || whole[body.size + 1] !== LF)
        throw new MalformedReplyError(`a ${body.word} body not ended by \\r\\n after ${body.size} bytes`);
      offset = missing;
      this.#onReply(body.words, whole.subarray(0, body.size));
    }
    let buffer = chunk;
    if (this.#pendingLine !== undefined) {
      // Rare (a read that ends inside a reply's first line): the leftover is a few bytes.
      buffer = Buffer.concat([this.#pendingLine, chunk]);
      this.#pendingLine = undefined;
    }
    while (offset < buffer.length) {
      const eol = buffer.indexOf(LF, offset);
      if (eol === -1) {
        if (buffer.length - offset > MAX_LINE_BYTES) throw new MalformedReplyError(`a reply line longer than ${MAX_LINE_BYTES} bytes`);
        break;
      }
      if (eol === offset || buffer[eol - 1] !== CR) throw new MalformedReplyError('a reply line not ended by \\r\\n');
      const words = buffer.toString('latin1', offset, eol - 1).split(' ');
      const word = words[0] as string;
      if (!WITH_BODY.has(word)) {
        offset = eol + 1;
        this.#onReply(words, undefined);
        continue;
      }
      // Plain decimal digits only: Number() would also take '', '0x5', '5e0' and '+5'.
      const length = words[words.length - 1] as string;
      const size = words.length >= 2 && DIGITS.test(length) ? Number(length) : Number.NaN;
      if (!Number.isSafeInteger(size)) throw new MalformedReplyError(`a ${word} reply without a valid length`);
      const start = eol + 1;
      const end = start + size;
      if (end + 2 > buffer.length) {
        // The block continues in later reads: collect its pieces and join them once (see above).
        const piece = buffer.subarray(start);
        this.#pendingBody = { words, word, size, parts: piece.length > 0 ? [piece] : [], have: piece.length };
        return;
      }
      if (buffer[end] !== CR || buffer[end + 1] !== LF)
        throw new MalformedReplyError(`a ${word} body not ended by \\r\\n after ${size} bytes`);
      offset = end + 2;
      this.#onReply(words, buffer.subarray(start, end));
    }
    if (offset < buffer.length) this.#pendingLine = buffer.subarray(offset);
  }
}
