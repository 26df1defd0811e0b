import { CacheError, L2CommandError, L2UnavailableError } from '../errors.js'

const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|MOVED|ASK)\b/

/** Turns an ioredis failure into a CacheError that says what to do. */
export function wrapRedisError(err: unknown, op: string): CacheError {
  if (err instanceof CacheError) return err
  const e = err instanceof Error ? err : new Error(String(err))
  if (e.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(e.message)) {
    return new L2CommandError(`Redis rejected ${op}: ${e.message}`, e)
  }
  return new L2UnavailableError(
    `Redis is unavailable during ${op} (${e.message}). Check that the server or Cluster in the redis option is running and reachable.`,
    e,
  )
}
