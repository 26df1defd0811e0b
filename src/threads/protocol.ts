/**
 * Messages between a thread attached to a cache and the thread that owns its L2
 * connections. Both sides import only this module's types and helpers.
 */
import { CacheError, ConflictError, CorruptEntryError, InvalidKeyError, InvalidOptionError, InvalidValueError, L2CommandError, L2UnavailableError, ValueTooLargeError } from '../errors.js'
import type { CacheErrorCode } from '../errors.js'

/** The Tier methods a worker may ask the owner to run on L2. */
export const REMOTE_METHODS = ['get', 'mget', 'set', 'casSet', 'take', 'counters', 'deletePrefixes', 'lock', 'unlock', 'rateLimit'] as const
export type RemoteMethod = (typeof REMOTE_METHODS)[number]

export interface Request {
  id: number
  /** BroadcastChannel name the answer goes to. */
  reply: string
  method: RemoteMethod
  args: unknown[]
}

export interface WireError {
  code?: CacheErrorCode
  name: string
  message: string
}

export interface Response {
  id: number
  ok: boolean
  value?: unknown
  error?: WireError
}

export function toWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err))
  return { code: e instanceof CacheError ? e.code : undefined, name: e.name, message: e.message }
}

export function fromWire(w: WireError): Error {
  switch (w.code) {
    case 'E_L2_UNAVAILABLE':
      return new L2UnavailableError(w.message)
    case 'E_L2_ERROR':
      return new L2CommandError(w.message)
    case 'E_VALUE_TOO_LARGE':
      return new ValueTooLargeError(w.message)
    case 'E_INVALID_VALUE':
      return new InvalidValueError(w.message)
    case 'E_INVALID_KEY':
      return new InvalidKeyError(w.message)
    case 'E_INVALID_OPTION':
      return new InvalidOptionError(w.message)
    case 'E_CONFLICT':
      return new ConflictError(w.message)
    case 'E_CORRUPT_ENTRY':
      return new CorruptEntryError('', w.message)
    case undefined:
      return Object.assign(new Error(w.message), { name: w.name })
    default:
      return new CacheError(w.code, w.message)
  }
}

/** Structured clone turns Buffers into plain Uint8Arrays; make them Buffers again, deeply. */
export function revive(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  if (Array.isArray(v)) return v.map(revive)
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) o[k] = revive(o[k])
  }
  return v
}
