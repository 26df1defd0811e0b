import type { Cluster, Redis } from 'ioredis'
import { Field } from '../observability/stats.js'
import type { Meter } from '../observability/stats.js'
import { Gate } from '../util/gate.js'
import type { CircuitBreaker } from './circuit_breaker.js'
import { lastConnectionError } from './connect.js'
import { wrapRedisError } from './errors.js'

/** Rejects when `p` has not settled within `ms`, with a message wrapRedisError reads as "unavailable". */
function withTimeout<T>(p: Promise<T>, ms: number, op: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${op} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}

/**
 * The L2 failure policy, in one place: every Redis command of the library runs
 * inside `run`. In order:
 * - the circuit breaker admits it, or it fails fast with E_L2_UNAVAILABLE;
 * - the gate caps the operations in flight (`maxInFlight`; the rest wait, in order);
 * - a deadline (`commandTimeout`) bounds it on a client nearcache did not create
 *   (the clients it creates carry ioredis' own commandTimeout);
 * - a failure is counted, turned into a CacheError (wrapRedisError) and, when it
 *   says Redis is unreachable, counted by the breaker; a reply error (NOPERM,
 *   WRONGTYPE, ...) proves Redis is up and counts as a success;
 * - the round trip is timed (the L2 latency figures).
 * Operations must not nest `run` (a gate of 1 would wait on itself).
 * What the facade does with a failure (namespace error counts, suppressL2Errors)
 * is not decided here.
 */
export class L2Policy {
  /** Caps the operations in flight to Redis (backpressure). */
  readonly gate: Gate

  constructor(
    private readonly client: Redis | Cluster,
    /** Whether nearcache created the client (then ioredis enforces commandTimeout itself). */
    owned: boolean,
    private readonly meter: Meter,
    maxInFlight = 10_000,
    /** Opens on repeated failures; undefined = no breaker. */
    readonly breaker?: CircuitBreaker,
    /** The deadline of one operation on a client nearcache did not create; undefined = none. */
    timeoutMs?: number,
  ) {
    this.gate = new Gate(maxInFlight)
    this.timeoutMs = owned ? undefined : timeoutMs
  }

  private readonly timeoutMs: number | undefined

  /** Runs one L2 operation `name` (named in errors: "Redis rejected <name>") under the policy. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let probe = false
    try {
      probe = this.breaker?.admit(name) ?? false
    } catch (err) {
      this.meter.add(Field.Errors)
      throw err
    }
    const wait = this.gate.enter()
    if (wait) await wait
    const start = performance.now()
    try {
      const v = await (this.timeoutMs === undefined ? fn() : withTimeout(fn(), this.timeoutMs, name))
      this.breaker?.success(probe)
      return v
    } catch (err) {
      this.meter.add(Field.Errors)
      const e = wrapRedisError(err, name, lastConnectionError(this.client))
      if (e.code === 'E_L2_UNAVAILABLE') this.breaker?.failure(probe, e.cause instanceof Error ? e.cause : undefined)
      else this.breaker?.success(probe)
      throw e
    } finally {
      this.meter.time(start)
      this.gate.leave()
    }
  }
}
