/**
 * What serveMetrics checks before it answers: its options (a token, who may
 * connect), the bearer token of a request (compared in constant time), and the
 * Host header (against DNS rebinding). One home for the endpoint's security rules.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { InvalidOptionError } from '../errors.js'
import { describe } from '../util/units.js'

/** Most /events streams open at once, by default. */
export const DEFAULT_MAX_EVENT_STREAMS = 8
/** Longest request target (path and query) served; longer is 414. */
export const MAX_URL_LENGTH = 2048
/** Node's limit on the request line and headers together (its default is 16 KiB). */
export const MAX_HEADER_BYTES = 8192
/** Time a client has to send its headers, and its whole request. */
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 15_000
/** Connections open at once; more are closed at once by Node. */
export const MAX_CONNECTIONS = 256

const TOKEN = /^[\x21-\x7e]{16,4096}$/
const HOST_NAME = /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)(?::\d{1,5})?$/

/** The endpoint's access rules, resolved from its options. */
export interface Guard {
  /** sha-256 of the token, or undefined when the endpoint is open. */
  tokenHash: Buffer | undefined
  /** Host names (lower case, no port) accepted with the server's own port, or undefined = any Host. */
  loopbackNames: ReadonlySet<string> | undefined
  /** Host names (lower case, no port) accepted with any port. */
  allowedHosts: ReadonlySet<string>
  maxEventStreams: number
}

export interface GuardOptions {
  host: string
  token?: unknown
  allowUnauthenticated?: unknown
  maxEventStreams?: unknown
  allowedHosts?: unknown
}

/** Whether the address to bind is loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/** The guard for these options, or an InvalidOptionError saying which option is wrong. */
export function resolveGuard(o: GuardOptions): Guard {
  if (o.token !== undefined && (typeof o.token !== 'string' || !TOKEN.test(o.token))) {
    throw new InvalidOptionError(
      `serveMetrics token must be 16 to 4096 visible ASCII characters without spaces (got ${typeof o.token === 'string' ? `${o.token.length} characters` : describe(o.token)}); generate one with 'openssl rand -hex 32'.`,
    )
  }
  if (o.allowUnauthenticated !== undefined && typeof o.allowUnauthenticated !== 'boolean') {
    throw new InvalidOptionError(`serveMetrics allowUnauthenticated must be a boolean (got ${describe(o.allowUnauthenticated)}).`)
  }
  const max = o.maxEventStreams ?? DEFAULT_MAX_EVENT_STREAMS
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 0 || max > 10_000) {
    throw new InvalidOptionError(`serveMetrics maxEventStreams must be a whole number from 0 to 10000 (got ${describe(max)}).`)
  }
  const allowed = o.allowedHosts ?? []
  if (!Array.isArray(allowed) || !allowed.every((h) => typeof h === 'string' && /^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)$/.test(h))) {
    throw new InvalidOptionError(`serveMetrics allowedHosts must be an array of host names without ports, e.g. ['metrics.internal'] (got ${describe(allowed)}).`)
  }
  const loopback = isLoopback(o.host)
  if (!loopback && o.token === undefined && o.allowUnauthenticated !== true) {
    throw new InvalidOptionError(
      `serveMetrics will not listen on ${JSON.stringify(o.host)} (not loopback) without a token: /metrics and /events would show every key to anyone who can connect. Pass { token } (clients send 'Authorization: Bearer <token>'), or allowUnauthenticated: true if the network is trusted.`,
    )
  }
  const names = new Set(['localhost', '127.0.0.1', '[::1]'])
  return {
    tokenHash: typeof o.token === 'string' ? sha256(o.token) : undefined,
    // Off loopback, the public names are not known: any Host, unless allowedHosts lists them.
    loopbackNames: loopback || allowed.length > 0 ? names : undefined,
    allowedHosts: new Set((allowed as string[]).map((h) => h.toLowerCase())),
    maxEventStreams: max,
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Whether the request carries the endpoint's token (true when the endpoint has none). Constant time in the token. */
export function authorized(guard: Guard, req: IncomingMessage): boolean {
  if (guard.tokenHash === undefined) return true
  const h = req.headers.authorization
  if (typeof h !== 'string' || h.length > 4200) return false
  const m = /^Bearer +(\S+) *$/i.exec(h)
  if (!m) return false
  // Comparing digests keeps the time independent of where (and whether) the lengths differ.
  return timingSafeEqual(sha256(m[1] as string), guard.tokenHash)
}

/** Whether the Host header names this server (see Guard.loopbackNames), `port` being the port it listens on. */
export function hostAllowed(guard: Guard, req: IncomingMessage, port: number): boolean {
  if (guard.loopbackNames === undefined) return true
  const host = req.headers.host
  if (typeof host !== 'string' || !HOST_NAME.test(host)) return false
  const colon = host.lastIndexOf(':')
  const hasPort = colon > host.lastIndexOf(']')
  const name = (hasPort ? host.slice(0, colon) : host).toLowerCase()
  const p = hasPort ? Number(host.slice(colon + 1)) : 80
  if (guard.allowedHosts.has(name)) return true
  return guard.loopbackNames.has(name) && p === port
}
