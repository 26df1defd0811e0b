import { L2UnavailableError } from '../errors.js'

export type CircuitState = 'closed' | 'open' | 'half-open'

/**
 * Opens after `threshold` consecutive L2 failures of the "unavailable" kind
 * (connection refused or lost, timeouts, Cluster down). While open, L2 operations
 * fail at once with E_L2_UNAVAILABLE instead of waiting on a dead server. After
 * `resetMs` one operation is let through as a probe (half-open): success closes
 * the circuit, failure opens it again for another `resetMs`.
 */
export class CircuitBreaker {
  state: CircuitState = 'closed'
  private failures = 0
  private openedAt = 0
  private probing = false
  /** What the last failure was (a sanitized Redis or socket error): the reason given while open. */
  private lastCause: Error | undefined
  /** Called on every state change. */
  onChange: (state: CircuitState) => void = () => {}

  constructor(
    readonly threshold: number,
    readonly resetMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws when the operation must not go to L2 now; answers whether it is the half-open probe. */
  admit(op: string): boolean {
    if (this.state === 'closed') return false
    if (this.state === 'open' && this.now() - this.openedAt >= this.resetMs) this.move('half-open')
    if (this.state === 'half-open' && !this.probing) {
      this.probing = true
      return true
    }
    const wait = Math.max(0, this.resetMs - (this.now() - this.openedAt))
    const last = this.lastCause ? `, the last: ${this.lastCause.message}` : ''
    throw new L2UnavailableError(
      `Redis is unavailable (circuit open after ${this.threshold} failures in a row${last}); ${op} failed fast. The next attempt goes through in ${wait} ms.`,
      this.lastCause,
    )
  }

  success(probe: boolean): void {
    this.failures = 0
    if (probe) this.probing = false
    if (this.state !== 'closed') this.move('closed')
  }

  /** `cause`: what went wrong (no command arguments in it), given as the reason while the circuit is open. */
  failure(probe: boolean, cause?: Error): void {
    if (probe) this.probing = false
    if (cause) this.lastCause = cause
    this.failures++
    if (this.state === 'half-open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = this.now()
      this.move('open')
    }
  }

  private move(s: CircuitState): void {
    this.state = s
    this.onChange(s)
  }
}
