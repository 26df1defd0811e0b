import type { Writable } from 'node:stream'

/** Writes to a stream, waiting for it to drain when its buffer is full. */
export function write(stream: Writable, text: string): Promise<void> | undefined {
  if (stream.write(text)) return undefined
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      stream.off('drain', onDrain)
      stream.off('error', done)
      if (err) reject(err)
      else resolve()
    }
    const onDrain = () => done()
    stream.once('drain', onDrain)
    stream.once('error', done)
  })
}

/**
 * Characters that must not reach a terminal raw from outside data (keys,
 * namespaces, channels, messages): C0 controls, DEL, C1 controls (ESC and CSI
 * start terminal escape sequences), and the bidirectional embeddings, overrides,
 * isolates and marks that make text display in another order than it is.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/** `s` with every unprintable character escaped: `\xNN` below U+0100, `\u{NNNN}` above. */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => {
    const cp = c.charCodeAt(0)
    return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`
  })
}

/** `s` quoted (JSON string syntax), with the characters JSON leaves raw (DEL, C1, bidi) escaped too. */
export function quoted(s: string): string {
  return jsonSafe(JSON.stringify(s))
}

/** What JSON.stringify leaves raw of UNPRINTABLE (it escapes C0 itself; raw C0 in its output is layout). */
const JSON_RAW = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/** JSON.stringify output with DEL, C1 controls and bidi characters written as \u escapes (still the same JSON). */
export function jsonSafe(json: string): string {
  return json.replace(JSON_RAW, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Data for the user: stdout. */
export async function out(text: string): Promise<void> {
  await write(process.stdout, text.endsWith('\n') ? text : `${text}\n`)
}

/** Messages (progress, warnings, errors): stderr. */
export function note(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`)
}

/** Prints a value as JSON on stdout. */
export function outJson(value: unknown): Promise<void> {
  return out(jsonSafe(JSON.stringify(value, null, 2)))
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** Pads columns of rows of cells to a plain text table. */
export function table(rows: string[][], indent = '  '): string {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)))
  return rows
    .map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd())
    .join('\n')
}

/** Caps how many per-line problems are printed; says how many were left out at the end. */
export class ProblemLog {
  count = 0
  readonly kept: { line: number; error: string }[] = []
  constructor(
    private readonly prefix: string,
    private readonly max = 50,
    private readonly before: () => void = () => {},
  ) {}

  add(line: number, error: string): void {
    this.count++
    if (this.kept.length < this.max) {
      this.kept.push({ line, error })
      this.before()
      note(`${this.prefix}: line ${line}: ${printable(error)}`)
    }
  }

  /** The "... and N more" line, if any were left out. */
  finish(): void {
    if (this.count > this.kept.length) note(`${this.prefix}: ... and ${this.count - this.kept.length} more (${this.count} in all)`)
  }
}
