import { InvalidOptionError } from '../errors.js'

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }
const UNIT_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i

/**
 * Longest TTL accepted (createCache's `ttl`, per-call `ttl`, `softTtl`, `grace`,
 * `l1.ttl`, `l1.negativeTtl`): 2^47 ms, about 4,460 years.
 * Redis refuses an expiry whose absolute time overflows 64 bits ("invalid expire
 * time") and a PX that is not a plain integer (ioredis sends 1e21 as "1e+21");
 * at 2^47 even `ttl + grace` plus today's time stays an exact integer far below
 * both limits, in Redis and in the envelope's f64 timestamps.
 */
export const MAX_TTL_MS = 2 ** 47
/** Longest timeout or interval accepted: what a Node.js timer can wait (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * A TTL in milliseconds from a number of milliseconds or a string such as
 * '500ms', '10s', '5m', '1h', '1d'. `undefined` stays `undefined` (no expiry).
 * Above `max` (default {@link MAX_TTL_MS}) it is refused.
 */
export function parseDuration(value: unknown, name: string, max = MAX_TTL_MS): number | undefined {
  if (value === undefined) return undefined
  let ms: number | undefined
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string') {
    const m = UNIT_RE.exec(value)
    const unit = DURATION_UNITS[(m?.[2] || 'ms').toLowerCase()]
    if (m && unit !== undefined) ms = Number(m[1]) * unit
  }
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new InvalidOptionError(
      `${name} must be a positive number of milliseconds or a duration string like '500ms', '10s', '5m', '1h', '1d' (got ${describe(value)}); Infinity (or leaving it out) means no expiry.`,
    )
  }
  const rounded = Math.max(1, Math.round(ms))
  if (rounded > max) {
    const why = max === MAX_TTL_MS ? 'about 4,460 years; Infinity means no expiry' : 'about 24.8 days, the longest a Node.js timer waits'
    throw new InvalidOptionError(`${name} must be at most ${max} ms (${why}) (got ${describe(value)}).`)
  }
  return rounded
}

/** A byte size from a number of bytes or a string such as '64mb', '512kb', '1gb'; above `max` it is refused. */
export function parseBytes(value: unknown, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  let n: number | undefined
  if (typeof value === 'number') n = value
  else if (typeof value === 'string') {
    const m = UNIT_RE.exec(value)
    const unit = BYTE_UNITS[(m?.[2] || 'b').toLowerCase()]
    if (m && unit !== undefined) n = Math.floor(Number(m[1]) * unit)
  }
  if (n === undefined || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidOptionError(
      `${name} must be a positive whole number of bytes or a size string like '512kb', '64mb', '1gb' (got ${describe(value)}).`,
    )
  }
  if (n > max) throw new InvalidOptionError(`${name} must be at most ${formatBytes(max)} (got ${describe(value)}).`)
  return n
}

/** `n` bytes as the largest unit that divides it ('512mb', '2gb'), else in bytes. */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['gb', 1024 ** 3], ['mb', 1024 ** 2], ['kb', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`
  }
  return `${n} bytes`
}

/** Longest string shown in a message (the rest is cut, so a hostile value cannot flood a log). */
const DESCRIBE_CHARS = 100

/** A value for an error message: strings quoted and escaped (JSON), cut after 100 characters. */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > DESCRIBE_CHARS ? `${JSON.stringify(value.slice(0, DESCRIBE_CHARS))}... (${value.length} characters)` : JSON.stringify(value)
  }
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return 'a symbol'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`
  return String(value)
}
