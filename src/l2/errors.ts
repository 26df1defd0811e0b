import { CacheError, L2CommandError, L2UnavailableError } from '../errors.js'
import { ACL_CHANNEL_PATTERN, ACL_KEY_PATTERNS } from '../keys.js'

/** Replies that mean "this server cannot serve us now", like a lost connection (WRONGPASS/NOAUTH: the connection cannot log in). */
const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|MOVED|ASK|WRONGPASS|NOAUTH)\b/
/** Failures that say only that the connection is gone, not why: the client's last connection error says why. */
const CONNECTION_LOST = /Connection is closed|max retries per request|timed out|not ready after|Stream isn't writeable|None of startup nodes|Failed to refresh slots cache/i
/** Longest Redis or socket message kept in an error (a reply can be long; nothing useful is past this). */
const MAX_MESSAGE_CHARS = 300

/**
 * A Redis or connection failure as nearcache passes it on, as the `cause` of its
 * errors: the name, message and code of the original, nothing else. ioredis
 * attaches the command and its arguments to reply errors (`command.args`), and
 * Redis quotes arguments in some messages ("unknown command ..., with args
 * beginning with: ..."); arguments can hold passwords (AUTH) and cached values,
 * so neither is ever kept.
 */
export class RedisFailure extends Error {
  declare readonly code?: string
  constructor(name: string, message: string, code: string | undefined) {
    super(message)
    this.name = name
    if (code !== undefined) (this as { code?: string }).code = code
  }
}

/** The failure with its arguments removed (see {@link RedisFailure}). */
export function sanitizeRedisError(err: unknown): RedisFailure {
  if (err instanceof RedisFailure) return err
  const e = err instanceof Error ? err : new Error(String(err))
  const code = (e as { code?: unknown }).code
  let message = e.message.replace(/,? with args beginning with:.*$/s, '')
  if (message.length > MAX_MESSAGE_CHARS) message = `${message.slice(0, MAX_MESSAGE_CHARS)}...`
  return new RedisFailure(e.name || 'Error', message, typeof code === 'string' ? code : undefined)
}

/** What is missing, from a NOPERM reply: the command, or access to keys or channels. */
function missingPermission(message: string): string {
  const command = /run the '([^']+)' command/.exec(message)
  if (command) return `permission to run the '${command[1]}' command`
  if (/keys/.test(message)) return `access to the cache's keys (key patterns such as ${ACL_KEY_PATTERNS})`
  if (/channel/.test(message)) return `access to the invalidation channels (channel pattern ${ACL_CHANNEL_PATTERN})`
  return 'a permission'
}

/**
 * Turns an ioredis failure into a CacheError that says what to do. `lastConnectionError`
 * is the client's most recent connection error (see connect.ts): when the failure says
 * only that the connection is gone, that error says why, and becomes the cause.
 */
export function wrapRedisError(err: unknown, op: string, lastConnectionError?: Error): CacheError {
  if (err instanceof CacheError) return err
  const e = sanitizeRedisError(err)
  if (e.name === 'ReplyError' && /^NOPERM\b/.test(e.message)) {
    return new L2CommandError(
      `Redis refused ${op}: the connection's ACL user lacks ${missingPermission(e.message)} (${e.message}). Grant it with ACL SETUSER, or connect as a user that has it.`,
      e,
    )
  }
  if (e.name === 'ReplyError' && !UNAVAILABLE_REPLY.test(e.message)) {
    return new L2CommandError(`Redis rejected ${op}: ${e.message}`, e)
  }
  const last = lastConnectionError && CONNECTION_LOST.test(e.message) ? sanitizeRedisError(lastConnectionError) : undefined
  return new L2UnavailableError(
    `Redis is unavailable during ${op} (${describeFailure(e, last)}). ${hint(last ?? e)}Check that the server or Cluster in the redis option is running and reachable.`,
    last ?? e,
  )
}

/** The failure, and the connection error behind it when there is one. */
export function describeFailure(e: Error, last: Error | undefined): string {
  if (!last || last.message === e.message) return e.message
  return `${e.message}; last connection error: ${last.message}`
}

/** A sentence on what to check for a connection error that is not "the server is down" ('' otherwise). */
export function hint(last: Error): string {
  const m = `${(last as { code?: unknown }).code ?? ''} ${last.message}`
  if (/WRONGPASS|NOAUTH|invalid password|AUTH/.test(m)) return 'Check the username and password in the redis option. '
  if (/CERT|certificate|SSL|TLS|self.signed|unable to verify/i.test(m)) return "Check that the TLS options trust the server's certificate (tls.ca). "
  return ''
}
