/**
 * Lines of a byte stream (a backup file, an NDJSON response) with a bound on
 * their length: never more than one line (up to the bound) and one chunk held at
 * once, whatever the input. A longer line is either an error naming its number,
 * or (`skipLong`) reported as `{ no, tooLong: bytes }` and skipped to its end.
 */
import { CliError } from './errors.js'

export type BoundedLine = { no: number; text: string; bytes: number } | { no: number; tooLong: number }

export interface BoundedLinesOptions {
  /** Report a line over the bound as `{ no, tooLong }` and go on (default: throw a CliError). */
  skipLong?: boolean
  /** Yield a last line that has no newline (default true; a stream cut mid-line may not want it). */
  unterminated?: boolean
}

export async function* boundedLines(
  body: AsyncIterable<Uint8Array>,
  maxLineBytes: number,
  what: string,
  { skipLong = false, unterminated = true }: BoundedLinesOptions = {},
): AsyncGenerator<BoundedLine> {
  let parts: Buffer[] = []
  let held = 0
  /** Bytes of the current line when it is over the bound (its text is not kept). */
  let skipped = -1
  let no = 0
  const decoder = new TextDecoder()
  const over = (n: number): never => {
    throw new CliError(`${what}: line ${n} is longer than ${maxLineBytes} bytes`)
  }
  for await (const chunk of body) {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    let nl: number
    while ((nl = buf.indexOf(10)) >= 0) {
      no++
      if (skipped >= 0) {
        yield { no, tooLong: skipped + nl }
      } else if (held + nl > maxLineBytes) {
        if (!skipLong) over(no)
        yield { no, tooLong: held + nl }
      } else {
        parts.push(buf.subarray(0, nl))
        const bytes = held + nl
        const line = decoder.decode(Buffer.concat(parts, bytes))
        yield { no, text: line.endsWith('\r') ? line.slice(0, -1) : line, bytes: bytes + 1 }
      }
      parts = []
      held = 0
      skipped = -1
      buf = buf.subarray(nl + 1)
    }
    if (skipped >= 0) skipped += buf.length
    else if (held + buf.length > maxLineBytes) {
      if (!skipLong) over(no + 1)
      skipped = held + buf.length
      parts = []
      held = 0
    } else if (buf.length > 0) {
      // Copied, so that the stream's own (possibly larger) buffer is not kept alive.
      parts.push(Buffer.from(buf))
      held += buf.length
    }
  }
  if (!unterminated) return
  if (skipped >= 0) yield { no: no + 1, tooLong: skipped }
  else if (held > 0) yield { no: no + 1, text: decoder.decode(Buffer.concat(parts, held)), bytes: held }
}
