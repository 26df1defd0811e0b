// Cloners specialised per value shape: for a plain object, one function that builds
// the copy as an object literal with the same keys in the same order (V8 then makes
// it with one map and no per-key lookups: ~35 ns for a 150-byte object against
// ~160 ns for clonePlain's generic walk). A shape is the object's keys in order plus
// the kind of each value; cloners are compiled once per shape, at most MAX_SHAPES,
// and shared by every memo entry of that shape.
//
// Generated code names properties only through JSON.stringify'd string literals
// (valid JavaScript string literals for any key: quotes, backslashes, line and
// paragraph separators, lone surrogates are escaped), so no key can inject code.
// A key '__proto__' is written as a computed key, which defines an own property
// (a plain one would set the copy's prototype).
import { clonePlain } from './plain_tree.js'

export type Cloner = (v: unknown) => unknown

/** Compiled shapes kept (and compiled) at most; later shapes use clonePlain. */
export const MAX_SHAPES = 512
/** Keys of one object a compiled shape may have; wider objects use clonePlain. */
const MAX_KEYS = 64
/** Longest shape description compiled (a deep or wide tree uses clonePlain). */
const MAX_SIGNATURE = 8192

const compiled = new Map<string, Cloner>()

/** How many shapes are compiled (tests). */
export function compiledShapes(): number {
  return compiled.size
}

/** Forgets every compiled shape (tests). */
export function forgetShapes(): void {
  compiled.clear()
}

type O = Record<string, unknown>

const copyArray = (a: unknown): unknown => (a as unknown[]).slice()
const copyDate = (d: unknown): unknown => new Date((d as Date).getTime())
function mapArray(a: unknown, each: Cloner): unknown {
  const src = a as unknown[]
  const out = new Array(src.length)
  for (let i = 0; i < src.length; i++) out[i] = each(src[i])
  return out
}

/** A value's kind in a shape: how its clone is made. */
interface Kind {
  sig: string
  /** The expression that copies `x` (a JavaScript expression over the helpers), given its sub-cloners' indexes. */
  expr: (x: string, subs: Cloner[]) => string
}

const PRIMITIVE: Kind = { sig: 'p', expr: (x) => x }
const DATE: Kind = { sig: 'd', expr: (x) => `d(${x})` }
const GENERIC: Kind = { sig: 'g', expr: (x) => `g(${x})` }
const PRIMITIVES: Kind = { sig: 'ap', expr: (x) => `s(${x})` }

function isPlainObject(x: object): boolean {
  return Object.getPrototypeOf(x) === Object.prototype
}

/** The kind of `x`; undefined when the signature grows past its bound (then the whole value uses clonePlain). */
function kindOf(x: unknown, budget: { left: number }): Kind | undefined {
  if (typeof x !== 'object' || x === null) return PRIMITIVE
  if (Array.isArray(x)) {
    if (Object.getPrototypeOf(x) !== Array.prototype) return GENERIC
    // Only primitives (copied by slice), or only plain objects of one shape (each copied
    // by its shape's cloner); any mix is generic.
    let primitives = 0
    let first: Kind | undefined
    for (let i = 0; i < x.length; i++) {
      const e: unknown = x[i]
      if (typeof e !== 'object' || e === null) {
        if (first !== undefined) return GENERIC
        primitives++
        continue
      }
      if (primitives > 0 || Array.isArray(e) || !isPlainObject(e)) return GENERIC
      if (first === undefined) {
        first = kindOf(e, budget)
        if (first === undefined) return undefined
        if (first === GENERIC) return GENERIC
      } else if (objectSignature(e as O) !== first.sig) return GENERIC
    }
    if (first === undefined) return PRIMITIVES
    const each = cloneOf(first as Kind)
    if (each === undefined) return GENERIC
    return { sig: `a${(first as Kind).sig}`, expr: (v, subs) => `m(${v}, c[${subs.push(each) - 1}])` }
  }
  if (x instanceof Date && Object.getPrototypeOf(x) === Date.prototype) return DATE
  if (!isPlainObject(x)) return GENERIC
  return objectKind(x as O, budget)
}

/** The signature of a plain object's shape (keys in order and their kinds), or '' when too wide/deep. */
function objectSignature(o: O): string {
  const k = objectKind(o, { left: MAX_SIGNATURE })
  return k === undefined || k === GENERIC ? '' : k.sig
}

function objectKind(o: O, budget: { left: number }): Kind | undefined {
  const keys: string[] = []
  const kinds: Kind[] = []
  let sig = '{'
  for (const key in o) {
    if (keys.length === MAX_KEYS) return GENERIC
    const kind = kindOf(o[key], budget)
    if (kind === undefined) return undefined
    keys.push(key)
    kinds.push(kind)
    sig += `${JSON.stringify(key)}:${kind.sig},`
    budget.left -= key.length + kind.sig.length
    if (budget.left < 0) return undefined
  }
  sig += '}'
  return {
    sig,
    expr: (x, subs) => {
      const each = compile(sig, keys, kinds)
      return each === undefined ? `g(${x})` : `c[${subs.push(each) - 1}](${x})`
    },
  }
}

/** The cloner of a kind at the top of a value. */
function cloneOf(kind: Kind): Cloner | undefined {
  if (kind === PRIMITIVE) return (v) => v
  const subs: Cloner[] = []
  const expr = kind.expr('v', subs)
  if (expr === 'v') return (v) => v
  // Its shape could not be compiled (MAX_SHAPES): the caller uses clonePlain.
  if (expr === 'g(v)') return undefined
  // One sub-cloner applied to the whole value: use it as is.
  if (expr === 'c[0](v)') return subs[0]
  return build(`return ${expr}`, subs)
}

function build(body: string, subs: Cloner[]): Cloner {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('c', 's', 'd', 'g', 'm', `return function clone(v) { ${body} }`) as (...a: unknown[]) => Cloner
  return make(subs, copyArray, copyDate, clonePlain, mapArray)
}

function compile(sig: string, keys: string[], kinds: Kind[]): Cloner | undefined {
  const hit = compiled.get(sig)
  if (hit !== undefined) return hit
  if (compiled.size >= MAX_SHAPES) return undefined
  const subs: Cloner[] = []
  const fields = keys.map((key, i) => {
    const name = JSON.stringify(key)
    const prop = key === '__proto__' ? `[${name}]` : name
    return `${prop}: ${(kinds[i] as Kind).expr(`v[${name}]`, subs)}`
  })
  const fn = build(`return {${fields.join(', ')}}`, subs)
  compiled.set(sig, fn)
  return fn
}

/**
 * A cloner for `value`'s shape, compiled (or found) now; it copies `value`, and
 * any value of the same shape, exactly as clonePlain would. Undefined when the
 * shape cannot be compiled (too wide or deep, or MAX_SHAPES reached): use clonePlain.
 * `value` must be a plain tree (isPlainTree), not changed afterwards.
 */
export function shapeCloner(value: unknown): Cloner | undefined {
  const kind = kindOf(value, { left: MAX_SIGNATURE })
  if (kind === undefined || kind === GENERIC) return undefined
  return cloneOf(kind)
}
