import { InvalidOptionError } from '../errors.js'

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }
const UNIT_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i

/**
 * A TTL in milliseconds from a number of milliseconds or a string such as
 * '500ms', '10s', '5m', '1h', '1d'. `undefined` stays `undefined` (no expiry).
 */
export function parseDuration(value: unknown, name: string): number | undefined {
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
  return Math.max(1, Math.round(ms))
}

/** A byte size from a number of bytes or a string such as '64mb', '512kb', '1gb'. */
export function parseBytes(value: unknown, name: string, fallback: number): number {
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
  return n
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return 'a symbol'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`
  return String(value)
}
