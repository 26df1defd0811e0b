import { RateLimitedError } from '../errors.js'
import { Throttle } from '../util/throttle.js'
import { rateLimitKey } from '../keys.js'
import type { Clock, ResolvedOptions } from '../options/options.js'
import type { Tier } from '../tiers/tier.js'
import type { AuditTrail } from './audit.js'
import { KeyScope } from './key_pattern.js'
import type { Permission, ResolvedRateLimit } from './principals.js'
import { bucketRule, RateBuckets } from './token_bucket.js'
import type { BucketRule } from './token_bucket.js'

/** A principal as a view enforces it (compiled once per thread). */
export interface CompiledPrincipal {
  readonly name: string
  /** Its bucket in the shared buffer. */
  readonly slot: number
  readonly can: ReadonlySet<Permission>
  readonly scope: KeyScope
  readonly limit: ResolvedRateLimit | undefined
  readonly rule: BucketRule | undefined
  /** The Redis key of its distributed budget. */
  readonly budgetKey: string
}

type DistributedLimit = NonNullable<Tier['rateLimit']>

/** Access control of one thread's cache: the principals, their shared buckets, the audit trail. */
export class AccessState {
  readonly principals: ReadonlyMap<string, CompiledPrincipal>

  constructor(
    opts: ResolvedOptions,
    readonly buckets: RateBuckets,
    private readonly clock: Clock,
    /** The L2's distributed limiter (through the owner thread in an attached one). */
    private readonly distributed: DistributedLimit | undefined,
    readonly trail: AuditTrail | undefined,
    /** Where a distributed limiter's failure is reported when the call goes on without it ('local', 'allow'). */
    private readonly onError: (err: Error) => void = () => {},
  ) {
    const list = opts.access ? opts.access.principals : []
    this.principals = new Map(
      list.map((p, slot) => [
        p.name,
        {
          name: p.name,
          slot,
          can: new Set(p.can),
          scope: new KeyScope(p.keys),
          limit: p.rateLimit,
          rule: p.rateLimit ? bucketRule(p.rateLimit.rate, p.rateLimit.burst) : undefined,
          budgetKey: rateLimitKey(opts.namespace, p.name),
        },
      ]),
    )
  }

  /** The buffer of the buckets, for a new thread's state (undefined: make one). */
  static buckets(opts: ResolvedOptions, sab?: SharedArrayBuffer): RateBuckets {
    return new RateBuckets(opts.access ? opts.access.principals.length : 0, sab)
  }

  /**
   * Spends `cost` tokens of `p`'s budget, or throws E_RATE_LIMITED (nothing
   * spent). Synchronous for a local bucket; a promise for a distributed one.
   */
  spend(p: CompiledPrincipal, cost: number): void | Promise<void> {
    const { limit, rule } = p
    if (!limit || !rule || cost === 0) return
    if (cost > limit.burst) throw limited(p, cost, Infinity)
    if (limit.distributed && this.distributed) {
      return this.distributed(p.budgetKey, rule.intervalUs, rule.toleranceUs, cost).then(
        (wait) => {
          if (wait > 0) throw limited(p, cost, wait)
        },
        (err: unknown) => {
          if (limit.onL2Error === 'deny') throw err
          this.reportLimiterError(err)
          if (limit.onL2Error === 'local') this.local(p, rule, cost)
        },
      )
    }
    this.local(p, rule, cost)
  }

  private readonly reports = new Throttle()

  /**
   * A limiter failure the call went on without (Redis down, a missing ACL grant such
   * as NOPERM on the budget key): reported at most once a second, so an outage does
   * not flood the 'error' event, yet a misconfiguration is never silent.
   */
  private reportLimiterError(err: unknown): void {
    if (!this.reports.due()) return
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)))
    } catch {
      // A reporter cannot change the call's outcome.
    }
  }

  private local(p: CompiledPrincipal, rule: BucketRule, cost: number): void {
    const wait = this.buckets.take(p.slot, cost, this.clock.now(), rule)
    if (wait > 0) throw limited(p, cost, wait)
  }
}

function limited(p: CompiledPrincipal, cost: number, waitMs: number): RateLimitedError {
  const l = p.limit as ResolvedRateLimit
  const what = cost === 1 ? 'a call' : `a call of ${cost} keys`
  const message =
    waitMs === Infinity
      ? `Principal '${p.name}' can never make ${what}: it costs more than its burst of ${l.burst} tokens. Split the batch.`
      : `Principal '${p.name}' is over its rate limit (${l.rate}/s, burst ${l.burst}${l.distributed ? ', shared by every process' : ''}): ${what} may pass again in ${waitMs} ms.`
  return new RateLimitedError(message, p.name, waitMs)
}
