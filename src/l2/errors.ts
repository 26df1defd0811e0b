import { CacheError, L2CommandError, L2UnavailableError } from '../errors.js'
import { ACL_CHANNEL_PATTERN, ACL_KEY_PATTERNS } from '../keys.js'
import { grantFor } from '../security/acl_rule.js'

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

/** Redis 7.0's reply when a command inside a script is refused by ACL (it says neither the command nor the key). */
const SCRIPT_ACL = /The user executing the script can't/
/** The commands nearcache's scripts (scripts.ts) run, for that message. */
const SCRIPT_COMMANDS = '+get +set +type +unlink +del +exists +incr'

/** Most key or channel names quoted in one permission error (a batch can carry hundreds). */
const MAX_NAMED = 3
/** Longest name quoted (keys can be long; the start says which one it is). */
const MAX_NAME_CHARS = 100

/**
 * The key or channel names of the command a NOPERM reply refused, from the
 * command ioredis attaches to reply errors, for the commands nearcache sends;
 * never its other arguments (values, script arguments).
 */
function refusedNames(err: unknown, kind: 'key' | 'channel'): string[] {
  const command = (err as { command?: { name?: unknown; args?: unknown } } | null)?.command
  if (typeof command?.name !== 'string' || !Array.isArray(command.args)) return []
  const args = command.args as unknown[]
  const name = command.name.toLowerCase()
  let names: unknown[] = []
  if (kind === 'channel') {
    if (name === 'subscribe' || name === 'unsubscribe') names = args
    else if (name === 'publish') names = args.slice(0, 1)
  } else if (name === 'mget' || name === 'unlink' || name === 'del' || name === 'exists') names = args
  else if (name === 'set' || name === 'get' || name === 'incr' || name === 'type') names = args.slice(0, 1)
  else if (name === 'evalsha' || name === 'eval') {
    const n = Number(String(args[1]))
    if (Number.isSafeInteger(n) && n >= 0) names = args.slice(2, 2 + n)
  }
  return [...new Set(names.map((a) => (Buffer.isBuffer(a) ? a.toString() : typeof a === 'string' ? a : '')).filter((a) => a !== ''))]
}

function shortName(s: string): string {
  return JSON.stringify(s.length > MAX_NAME_CHARS ? `${s.slice(0, MAX_NAME_CHARS)}...` : s)
}

/** What is missing, and the ACL SETUSER arguments that would grant it ('' when unknown). */
interface Missing {
  what: string
  grant: string
}

/** "the key "a:b"", or "one of the keys "a:1", "b:2" and 5 more", with "~a:*, ~b:*" to grant. */
function namedPermission(names: string[], kind: 'key' | 'channel'): Missing {
  const shown = names.slice(0, MAX_NAMED).map(shortName).join(', ')
  const more = names.length > MAX_NAMED ? ` and ${names.length - MAX_NAMED} more` : ''
  const what = names.length === 1 ? `the ${kind} ${shown}` : `one of the ${kind}s ${shown}${more}`
  const grants = [...new Set(names.map((n) => grantFor(n, kind)).filter((g): g is string => g !== undefined))]
  return { what: `access to ${what}`, grant: `${grants.slice(0, MAX_NAMED).join(' ')}${grants.length > MAX_NAMED ? ' ...' : ''}` }
}

/**
 * What is missing, from a NOPERM reply (Redis 7.0: "... to access one of the keys
 * used as arguments"; 7.2+: "No permissions to access a key"): the command, or
 * the keys or channel the refused command named, with the pattern to grant.
 */
function missingPermission(message: string, err: unknown): Missing {
  const command = /run the '([^']+)' command/.exec(message)
  if (command) return { what: `permission to run the '${command[1]}' command`, grant: `+${command[1]}` }
  for (const kind of ['key', 'channel'] as const) {
    if (!new RegExp(`\\b${kind}s?\\b`).test(message)) continue
    const names = refusedNames(err, kind)
    if (names.length > 0) return namedPermission(names, kind)
    return kind === 'key'
      ? { what: `access to the cache's keys (key patterns such as ${ACL_KEY_PATTERNS})`, grant: '' }
      : { what: `access to the invalidation channels (channel pattern ${ACL_CHANNEL_PATTERN})`, grant: '' }
  }
  return { what: 'a permission', grant: '' }
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
    const missing = missingPermission(e.message, err)
    return new L2CommandError(
      `Redis refused ${op}: the connection's ACL user lacks ${missing.what} (${e.message}). Grant ${missing.grant === '' ? 'it' : missing.grant} with ACL SETUSER ('nearcache acl --namespace NS' prints the whole rule of a namespace), or connect as a user that has it.`,
      e,
    )
  }
  if (e.name === 'ReplyError' && SCRIPT_ACL.test(e.message)) {
    return new L2CommandError(
      `Redis refused ${op}: the connection's ACL user lacks a permission that one of nearcache's Lua scripts needs (${e.message}). The scripts run ${SCRIPT_COMMANDS} on the keys they are given; 'nearcache acl --namespace NS' prints the whole rule, and ACL LOG names what was refused.`,
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
