/**
 * At most one report per interval (the 'error' reports of dropped messages,
 * dropped audit records and failed rate limiters): `due()` answers whether a
 * report may go now and, when it may, starts the next interval. Callers count
 * what happened in between and say how many in the report.
 */
export class Throttle {
  private last = -Infinity

  constructor(private readonly intervalMs = 1000) {}

  due(now = performance.now()): boolean {
    if (now - this.last < this.intervalMs) return false
    this.last = now
    return true
  }
}
