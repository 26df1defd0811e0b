import { threadId } from 'node:worker_threads'
import { CacheError } from '../errors.js'
import type { AuditTrail } from './audit.js'
import { AUDITED, boundedItems } from './audit_record.js'
import type { RawRecord } from './audit_record.js'

/** What a call names, by operation: its first argument is a key, a list of keys, entries, tags, a prefix, or nothing. */
function itemsOf(op: string, args: readonly unknown[]): Pick<RawRecord, 'kind' | 'items' | 'count'> {
  const a = args[0]
  switch (op) {
    case 'getMany':
    case 'deleteMany':
      return { kind: 'keys', ...boundedItems(a) }
    case 'setMany':
      return { kind: 'keys', ...boundedItems(Array.isArray(a) ? a.map((e: unknown) => (typeof e === 'object' && e !== null ? (e as { key?: unknown }).key : e)) : a) }
    case 'invalidateTags':
      return { kind: 'tags', ...boundedItems(a) }
    case 'invalidatePrefix':
      return { kind: 'prefix', ...boundedItems(typeof a === 'string' ? a : []) }
    case 'clear':
      return { kind: 'none', items: [], count: 0 }
    default:
      return { kind: 'key', ...boundedItems(typeof a === 'string' ? a : []) }
  }
}

/** The outcome of a call that failed: its code, or 'error'. */
export function outcomeOf(err: unknown): string {
  return err instanceof CacheError ? err.code : 'error'
}

/** Times one call and reports it to `trail` when it settles (the call's result is passed on untouched). */
export function audited<T>(trail: AuditTrail, principal: string | null, op: string, namespace: string, args: readonly unknown[], call: () => Promise<T>): Promise<T> {
  const time = Date.now()
  const start = performance.now()
  const report = (outcome: string) => {
    if (!trail.wants(op, outcome)) return
    try {
      trail.record({ time, principal, operation: op, namespace, ...itemsOf(op, args), outcome, durationMs: performance.now() - start, thread: threadId })
    } catch {
      // Recording never breaks a call.
    }
  }
  let p: Promise<T>
  try {
    p = call()
  } catch (err) {
    report(outcomeOf(err))
    return Promise.reject(err)
  }
  return p.then(
    (v) => {
      report('ok')
      return v
    },
    (err: unknown) => {
      report(outcomeOf(err))
      throw err
    },
  )
}

/** `audited` for a synchronous call (getSync): the record is made before the call's value or error is passed on. */
export function auditedSync<T>(trail: AuditTrail, principal: string | null, op: string, namespace: string, args: readonly unknown[], call: () => T): T {
  const time = Date.now()
  const start = performance.now()
  let outcome = 'ok'
  try {
    return call()
  } catch (err) {
    outcome = outcomeOf(err)
    throw err
  } finally {
    if (trail.wants(op, outcome)) {
      try {
        trail.record({ time, principal, operation: op, namespace, ...itemsOf(op, args), outcome, durationMs: performance.now() - start, thread: threadId })
      } catch {
        // Recording never breaks a call.
      }
    }
  }
}

/**
 * True while an audited call (or a view's call into the cache) is starting: the
 * cache's own calls made synchronously from inside it (delete calls deleteMany)
 * are part of that call, not calls of their own.
 */
let inside = false

/** Runs `fn` (synchronously) so that the cache calls it makes are not recorded again. */
export function unaudited<T>(fn: () => T): T {
  const was = inside
  inside = true
  try {
    return fn()
  } finally {
    inside = was
  }
}

/**
 * Records the plain cache's calls (principal null): each audited operation of
 * `cache` gets an own-property wrapper around its prototype method. Operations the
 * trail never records are left alone (no cost at all); a cache without `audit`
 * is never wrapped.
 */
export function auditCalls(cache: object, trail: AuditTrail, namespace: string): void {
  const proto = Object.getPrototypeOf(cache) as Record<string, (...args: unknown[]) => Promise<unknown>>
  for (const op of AUDITED) {
    if (!trail.wants(op)) continue
    const original = proto[op] as (...args: unknown[]) => Promise<unknown>
    Object.defineProperty(cache, op, {
      configurable: true,
      writable: true,
      value: function (this: unknown, ...args: unknown[]) {
        if (inside) return original.apply(this, args)
        const call = () => unaudited(() => original.apply(this, args))
        return op === 'getSync' ? auditedSync(trail, null, op, namespace, args, call) : audited(trail, null, op, namespace, args, call)
      },
    })
  }
}
