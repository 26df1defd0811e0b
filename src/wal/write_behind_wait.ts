/**
 * How write-behind's flush loop waits: idle until woken (new work, a drain, close),
 * for a batch to fill (at most `flushIntervalMs`), or between the attempts of a
 * failed batch (backoff). A wait keeps the process alive only while someone waits
 * for the queue (`urgent`: drain, close): queued writes are safe in the log.
 */
export class LoopWait {
  #timer: NodeJS.Timeout | undefined
  /** Resolves the loop's idle or interval wait early (new work, drain, close). */
  #wake: (() => void) | undefined
  /** Ends a retry backoff early (close gave up). */
  #cancelBackoff: (() => void) | undefined
  #idleForever = false

  constructor(private readonly urgent: () => boolean) {}

  /** The loop waits for new work with no timer (nothing ready). */
  get idleForever(): boolean {
    return this.#idleForever
  }

  /** Someone waits for the queue now: the current wait keeps the process alive. */
  ref(): void {
    this.#timer?.ref()
  }

  /** Ends an idle or interval wait now. */
  wake(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  /** Ends a backoff now. */
  cancelBackoff(): void {
    this.#cancelBackoff?.()
  }

  /** Waits until woken, or `ms` (Infinity = until woken). */
  idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(this.#timer)
        this.#timer = undefined
        this.#wake = undefined
        this.#idleForever = false
        resolve()
      }
      this.#wake = done
      this.#idleForever = ms === Infinity
      if (ms !== Infinity) {
        this.#timer = setTimeout(done, ms)
        // Queued writes are safe in the log: they need not keep the process alive unless someone waits for them.
        if (!this.urgent()) this.#timer.unref()
      }
    })
  }

  /** Waits `ms` unless `cancelBackoff` ends it first. */
  backoff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(this.#timer)
        this.#timer = undefined
        this.#cancelBackoff = undefined
        resolve()
      }
      this.#cancelBackoff = done
      this.#timer = setTimeout(done, ms)
      if (!this.urgent()) this.#timer.unref()
    })
  }
}
