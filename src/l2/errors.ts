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
  let message = opensslReason(e.message.replace(/,? with args beginning with:.*$/s, ''))
  if (message.length > MAX_MESSAGE_CHARS) message = `${message.slice(0, MAX_MESSAGE_CHARS)}...`
  return new RedisFailure(e.name || 'Error', message, typeof code === 'string' ? code : undefined)
}

/**
 * OpenSSL's own error lines ("80BC...:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13
 * alert certificate required:../deps/...c:1601:SSL alert number 116") as their reason
 * ("tlsv13 alert certificate required (SSL alert number 116)"); other messages as they are.
 */
function opensslReason(message: string): string {
  const m = /^[0-9A-F]+:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):[^:]*:\d+:?(.*)$/s.exec(message.trim())
  if (!m) return message
  const detail = (m[2] ?? '').trim()
  return `${(m[1] as string).trim()}${detail ? ` (${detail})` : ''}`
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

/** What the client's TLS settings were, for the hints: a reset means more when the client presented no certificate. */
export interface TlsContext {
  tls: boolean
  clientCert: boolean
}

/** Failures that say only that the connection is gone, not why (callers then look for the cause elsewhere). */
export function saysOnlyConnectionLost(e: Error): boolean {
  return CONNECTION_LOST.test(e.message)
}

/** How a hint names the settings it points at: the library's option names, or another vocabulary (the CLI's flags). */
export interface HintWords {
  credentials: string
  ca: string
  cert: string
  certAndKey: string
  /** Appended to "connect by a name or address in the certificate's subjectAltName": another way to match it, or where the name goes. */
  servername: string
  useTls: string
  plainPort: string
}

export const LIBRARY_HINT_WORDS: HintWords = {
  credentials: 'the username and password in the redis option',
  ca: 'tls.ca',
  cert: 'tls.cert',
  certAndKey: 'tls.cert and tls.key',
  servername: ', or set tls.servername to one of them',
  useTls: 'connect with rediss:// or a tls option',
  plainPort: 'A plain port takes redis://, not rediss:// or a tls option',
}

const TLS_HINTS: [RegExp, (w: HintWords) => string][] = [
  [/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/i,
    (w) => `The server's TLS certificate does not name the host connected to (hostname/IP mismatch): connect by a name or address in the certificate's subjectAltName${w.servername}. `],
  [/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|certificate has expired|certificate is not yet valid/i,
    () => "The server's TLS certificate has expired or is not yet valid: renew it on the server. "],
  [/CERTIFICATE_REQUIRED|certificate required/i,
    (w) => `The server requires a client certificate (mutual TLS, tls-auth-clients yes): give ${w.certAndKey}, signed by a CA the server trusts. `],
  [/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE)|alert (bad certificate|unknown ca|certificate unknown)/i,
    (w) => `The server rejected the client certificate (${w.cert}): it must be signed by a CA in the server's tls-ca-cert-file. `],
  [/UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE|self.signed|unable to verify|unable to get (local )?issuer/i,
    (w) => `The server's TLS certificate is not trusted (its issuer is not a CA the client trusts). Check that the TLS options trust the server's certificate (${w.ca}): pass the CA that signed it. `],
  [/WRONG_VERSION_NUMBER|wrong version number|packet length too long|unknown protocol/i,
    (w) => `The server did not answer the TLS handshake: is TLS enabled on that port (tls-port)? ${w.plainPort}. `],
]

/**
 * A sentence on what to check for a connection error that is not "the server is
 * down" ('' otherwise): a wrong password, or the cause of a TLS rejection (an
 * untrusted server certificate, a hostname mismatch, a client certificate the
 * server requires or refuses). `tls` says how the client connected: a server
 * that requires client certificates often just resets a TLS 1.3 connection
 * that brought none (the alert races the client's first command).
 */
export function hint(last: Error, tls?: TlsContext, w: HintWords = LIBRARY_HINT_WORDS): string {
  const m = `${(last as { code?: unknown }).code ?? ''} ${last.message}`
  if (/WRONGPASS|NOAUTH|invalid password|AUTH/.test(m)) return `Check ${w.credentials}. `
  for (const [pattern, text] of TLS_HINTS) if (pattern.test(m)) return text(w)
  const reset = /ECONNRESET|EPIPE|socket hang up|disconnected before secure TLS/i.test(m)
  if (tls?.tls && !tls.clientCert && reset) {
    return `The server closed the TLS connection right after the handshake, and this client presents no certificate: the server probably requires one (mutual TLS, tls-auth-clients yes); give ${w.certAndKey}. `
  }
  if (tls?.tls && tls.clientCert && reset) {
    return `The server closed the TLS connection right after the handshake: if it requires client certificates (tls-auth-clients yes), it did not accept this one (${w.cert} must be signed by a CA in the server's tls-ca-cert-file). `
  }
  // A TLS-only port answers a plain client's first command with a reset or a bare close.
  if (tls && !tls.tls && /ECONNRESET|Connection is closed/.test(m)) return `If the server accepts only TLS connections (tls-port), ${w.useTls}. `
  if (/CERT|certificate|SSL|TLS/i.test(m)) return `Check the TLS options (${w.ca}, ${w.certAndKey}) against the server's TLS settings. `
  return ''
}
