import { note } from './output.js'

export interface ProgressCounts {
  done: number
  failed: number
  /** Fraction 0..1 when the total is known. */
  fraction: number | undefined
}

/**
 * Progress on stderr: a redrawn bar when stderr is a terminal, otherwise a plain
 * line every few seconds (logs and CI stay readable). `--json` keeps it.
 */
export class Progress {
  readonly #tty: boolean
  readonly #label: string
  readonly #sample: () => ProgressCounts
  readonly #started = performance.now()
  #timer: NodeJS.Timeout | undefined
  #drawn = false

  constructor(label: string, sample: () => ProgressCounts, opts: { tty?: boolean; intervalMs?: number } = {}) {
    this.#label = label
    this.#sample = sample
    this.#tty = opts.tty ?? process.stderr.isTTY === true
    const interval = opts.intervalMs ?? (this.#tty ? 100 : 2000)
    this.#timer = setInterval(() => this.#draw(), interval)
    this.#timer.unref()
  }

  /** Erases the bar so that a message can be printed on a clean line. */
  clear(): void {
    if (this.#tty && this.#drawn) {
      process.stderr.write('\r\x1b[2K')
      this.#drawn = false
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    this.clear()
  }

  #draw(): void {
    const s = this.#sample()
    const elapsed = (performance.now() - this.#started) / 1000
    const rate = elapsed > 0 ? Math.round(s.done / elapsed) : 0
    const pct = s.fraction === undefined ? '' : `${Math.min(100, Math.floor(s.fraction * 100))}%`
    const counts = `${s.done} done, ${s.failed} failed, ${rate}/s`
    if (this.#tty) {
      const width = 24
      const bar =
        s.fraction === undefined
          ? ''
          : `[${'#'.repeat(Math.round(Math.min(1, s.fraction) * width)).padEnd(width, '.')}] ${pct.padStart(4)} `
      process.stderr.write(`\r\x1b[2K${this.#label} ${bar}${counts}`)
      this.#drawn = true
    } else {
      note(`${this.#label}: ${pct ? `${pct}, ` : ''}${counts}`)
    }
  }
}
