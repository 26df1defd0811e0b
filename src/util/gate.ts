/**
 * A counting gate: at most `limit` operations run at once; the rest wait in
 * arrival order. It turns an unbounded burst into backpressure (callers' promises
 * stay pending) instead of unbounded queued commands and memory.
 */
export class Gate {
  private running = 0
  private readonly waiting: (() => void)[] = []
  private head = 0
  /** Highest number of operations that ran at once. */
  peak = 0

  constructor(readonly limit: number) {}

  get active(): number {
    return this.running
  }

  /** Resolves when the caller may start; it must call `leave()` when done. */
  enter(): Promise<void> | undefined {
    if (this.running < this.limit) {
      this.running++
      if (this.running > this.peak) this.peak = this.running
      return undefined
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  leave(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head++] as () => void
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head)
        this.head = 0
      }
      next() // the slot passes straight to the next waiter
      return
    }
    this.running--
  }
}
