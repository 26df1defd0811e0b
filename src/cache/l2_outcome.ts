import type { CacheError } from '../errors.js'
import { NsField } from '../observability/stats.js'
import { emitError } from './context.js'
import type { Scope } from './context.js'

/**
 * The cache's side of the L2 failure policy: every tier call that can reach Redis
 * goes through `l2` exactly once. (The Redis side — breaker, gate, deadline, error
 * mapping — is src/l2's policy, which every Redis command goes through.)
 *
 * - A failure counts once against the namespace's `errors`, and rejects.
 * - With `onUnavailable` (reads only) and the `suppressL2Errors` option, "Redis is
 *   unavailable" becomes that answer (a miss) plus an 'error' event instead.
 */
export function l2<T>(sc: Scope, p: Promise<T>, onUnavailable?: () => T): Promise<T> {
  // One .catch, no async frame: this wraps every L2 read of the get path.
  return p.catch((err: unknown) => {
    const code = (err as CacheError | undefined)?.code
    if (code === 'E_L2_UNAVAILABLE' || code === 'E_L2_ERROR') sc.m.add(NsField.Errors)
    return absorbed(sc, err, onUnavailable)
  })
}

/**
 * `suppressL2Errors` alone, for work whose tier calls went through `l2` already
 * (getOrSet caching a loaded value): rejects with `err`, or answers `onUnavailable()`.
 */
export function absorbed<T>(sc: Scope, err: unknown, onUnavailable?: () => T): T {
  if (onUnavailable === undefined || (err as CacheError | undefined)?.code !== 'E_L2_UNAVAILABLE' || !sc.s.opts.suppressL2Errors) throw err
  emitError(sc.s, err)
  return onUnavailable()
}

/** A read's answer when Redis is unavailable and `suppressL2Errors` is on: a miss. */
export const MISS = (): null => null
