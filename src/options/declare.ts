import { InvalidOptionError } from '../errors.js'
import { describe, MAX_TTL_MS, parseBytes, parseDuration } from '../util/units.js'

// How an option is declared, and the one walk that reads a group of them. The
// declarations themselves are in declarations.ts.

/** Reads one option's value (hostile input) as the cache runs with it; throws InvalidOptionError. `name` is its full name ('l1.ttl'). */
export type Parse<T> = (value: unknown, name: string) => T

export interface Decl<T> {
  /** Used when the option is left out (undefined), and read by `parse` like a given value. */
  readonly default?: unknown
  /** The option must be given (it has no default): a group without it is refused. */
  readonly required?: true
  /** The input name, when it differs from the resolved one (writeBehind.flushInterval resolves to flushIntervalMs). */
  readonly from?: string
  readonly parse: Parse<T>
}

/** One declaration per resolved field: a missing or extra one is a compile error. */
export type Decls<Out> = { readonly [K in keyof Out]-?: Decl<Out[K]> }

/** The input names a group accepts, in declaration order. */
export function declaredNames(decls: Decls<object>): string[] {
  return Object.entries(decls).map(([key, d]: [string, Decl<unknown>]) => d.from ?? key)
}

/** How a group of options is written in a message: `{ dir, fsync?, batchSize? }`. */
export function shapeOf(decls: Decls<object>): string {
  const names = Object.entries(decls).map(([key, d]: [string, Decl<unknown>]) => (d.from ?? key) + (d.required ? '' : '?'))
  return `{ ${names.join(', ')} }`
}

/**
 * Reads an options object against its declarations: unknown names are refused
 * (listing the known ones), each declared option is parsed (its default when left
 * out), in declaration order. `path` is '' for createCache's own options, else the
 * group's name ('l1').
 */
export function resolveGroup<Out>(decls: Decls<Out>, input: object, path: string): Out {
  const known = declaredNames(decls)
  for (const k of Object.keys(input)) {
    if (known.includes(k)) continue
    throw new InvalidOptionError(path === '' ? `Unknown option '${k}'. Known options: ${known.join(', ')}.` : `Unknown ${path} option '${k}'. Known: ${known.join(', ')}.`)
  }
  const out: Partial<Record<keyof Out, unknown>> = {}
  for (const key of Object.keys(decls) as (keyof Out & string)[]) {
    const d: Decl<unknown> = decls[key]
    const from = d.from ?? key
    const name = path === '' ? from : `${path}.${from}`
    const given = (input as Record<string, unknown>)[from]
    if (given === undefined && d.required) {
      throw new InvalidOptionError(`${path} must be ${shapeOf(decls as Decls<object>)} or false; ${name} is missing.`)
    }
    out[key] = d.parse(given === undefined ? d.default : given, name)
  }
  return out as Out
}

/**
 * An option that is a group of options: `false` turns it off, an object is read
 * against `decls`, and `true` (when `onWhenTrue`) means the group's defaults.
 * Anything else is refused with the group's shape.
 */
export function group<Out>(decls: Decls<Out>, onWhenTrue: boolean): Parse<Out | false> {
  return (value, name) => {
    if (value === false) return false
    if (value === true && onWhenTrue) return resolveGroup(decls, {}, name)
    if (isRecord(value)) return resolveGroup(decls, value, name)
    const shape = shapeOf(decls as Decls<object>)
    throw new InvalidOptionError(`${name} must be ${onWhenTrue ? `true, false or ${shape}` : `${shape} or false`} (got ${describe(value)}).`)
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function fail(message: string): never {
  throw new InvalidOptionError(message)
}

// ---------------------------------------------------------------- value rules

/** undefined passes through (an option without a default); anything else goes to `parse`. */
export function optional<T>(parse: Parse<T>): Parse<T | undefined> {
  return (value, name) => (value === undefined ? undefined : parse(value, name))
}

/** A duration in ms ('10s', 500), from 1 ms to `max`. */
export function duration(max = MAX_TTL_MS): Parse<number> {
  // Only an option without a default can pass undefined; null refuses it like any non-duration.
  return (value, name) => parseDuration(value ?? null, name, max) as number
}

/** A size in bytes ('64mb', 1024), from 1 to `max`. */
export function bytes(max?: number): Parse<number> {
  return (value, name) => parseBytes(value ?? null, name, 0, max)
}

/** A whole number from `min` (to `max`, when given). */
export function wholeNumber(min: number, max?: number): Parse<number> {
  return (value, name) => {
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= min && (max === undefined || value <= max)) return value
    return fail(`${name} must be a whole number ${max === undefined ? `of at least ${min}` : `from ${min} to ${max}`} (got ${describe(value)}).`)
  }
}

export const flag: Parse<boolean> = (value, name) => (typeof value === 'boolean' ? value : fail(`${name} must be true or false (got ${describe(value)}).`))

/** A function; `shape` says which, for the message ('an async function (changes) => void'). */
export function func<F>(shape: string): Parse<F> {
  return (value, name) => (typeof value === 'function' ? (value as F) : fail(`${name} must be ${shape} (got ${describe(value)}).`))
}
