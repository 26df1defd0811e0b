import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { CliError, UsageError, oneLine } from './errors.js'
import { boundedLines } from './bounded_lines.js'
import type { BoundedLine } from './bounded_lines.js'

export interface Line {
  /** 1-based line number. */
  no: number
  text: string
}

export interface LineSource {
  /** What to call the input in messages. */
  name: string
  /** Size in bytes when known (a regular file), for progress. */
  size: number | undefined
  /** Bytes consumed so far. */
  readonly consumed: number
  lines(): AsyncGenerator<Line>
  /** The lines, none held longer than `maxLineBytes`: a longer one comes as `{ no, tooLong }`, skipped. */
  bounded(maxLineBytes: number): AsyncGenerator<BoundedLine>
}

/**
 * Opens a JSON-lines input: a file, or stdin for '-' / no file. Reading stdin
 * from a terminal is a usage error (the user forgot the redirection).
 */
export async function openLines(file: string | undefined, command: string): Promise<LineSource> {
  let input: Readable
  let name: string
  let size: number | undefined
  if (file === undefined || file === '-') {
    if (process.stdin.isTTY) {
      throw new UsageError(`${command} reads from stdin: redirect a file into it (< FILE) or pass --from FILE`, command)
    }
    input = process.stdin
    name = 'stdin'
  } else {
    try {
      const st = await stat(file)
      if (st.isDirectory()) throw new Error('it is a directory')
      if (st.isFile()) size = st.size
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${oneLine(err)}`, { cause: err })
    }
    input = createReadStream(file)
    name = file
  }
  let consumed = 0
  let failure: unknown
  input.on('error', (err) => (failure = err))
  return {
    name,
    size,
    get consumed() {
      return consumed
    },
    async *lines() {
      const rl = createInterface({ input, crlfDelay: Infinity })
      let no = 0
      try {
        for await (const text of rl) {
          no++
          consumed += Buffer.byteLength(text) + 1
          yield { no, text }
        }
      } finally {
        rl.close()
      }
      if (failure) throw new CliError(`cannot read ${name}: ${oneLine(failure)}`, { cause: failure })
    },
    async *bounded(maxLineBytes) {
      try {
        for await (const l of boundedLines(input, maxLineBytes, name, { skipLong: true })) {
          consumed += 'bytes' in l ? l.bytes : l.tooLong + 1
          yield l
        }
      } catch (err) {
        if (err instanceof CliError) throw err
        throw new CliError(`cannot read ${name}: ${oneLine(failure ?? err)}`, { cause: failure ?? err })
      }
    },
  }
}
