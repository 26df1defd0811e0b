import fc from 'fast-check'
import { beforeEach, describe, expect, it } from 'vitest'
import { clonePlain, isPlainTree } from '../../src/codec/plain_tree.js'
import { compiledShapes, forgetShapes, MAX_SHAPES, shapeCloner } from '../../src/codec/shape_clone.js'

// Keys that have tripped object copiers before: prototype names, numeric-like keys
// (enumerated before the others, in numeric order), quotes, backslashes, line
// separators, lone surrogates, code-looking strings, the empty string.
const hostileKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  'valueOf',
  '0',
  '1',
  '10',
  '01',
  '-1',
  '1.5',
  '4294967295',
  '',
  ' ',
  '"',
  "'",
  '\\',
  '`${x}`',
  '\u2028',
  '\u2029',
  '\ud800',
  '\udfff',
  '"]: 1, x: process.exit(1), ["',
  '}); throw 1; ({',
  'a\nb',
)
const key = fc.oneof(hostileKey, fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }))
const primitive = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.bigInt())

/** Plain objects (with hostile keys, __proto__ as an own key included), arrays, Dates, Maps, Sets, bytes. */
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, primitive, tie('object'), tie('array'), tie('exotic')),
  object: fc.array(fc.tuple(key, tie('tree')), { maxLength: 6 }).map((entries) => {
    const o: Record<string, unknown> = {}
    // defineProperty: an own '__proto__' key, as a decoder makes it (assignment would set the prototype).
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
    return o
  }),
  array: fc.oneof(
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.array(primitive, { maxLength: 4 }),
    // Arrays of one shape: the case a compiled per-element cloner serves.
    fc.array(fc.record({ id: fc.integer(), name: fc.string({ maxLength: 4 }) }).map((r) => ({ ...r })), { maxLength: 4 }),
  ),
  exotic: fc.oneof(
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 4 }),
    fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    fc.array(fc.tuple(primitive, primitive), { maxLength: 3 }).map((kv) => new Map(kv)),
    fc.array(primitive, { maxLength: 3 }).map((xs) => new Set(xs)),
  ),
}))

/** Every object reachable from `v`. */
function objects(v: unknown, out = new Set<object>()): Set<object> {
  if (typeof v !== 'object' || v === null || out.has(v)) return out
  out.add(v)
  if (v instanceof Map) for (const [k, x] of v) objects(x, objects(k, out))
  else if (v instanceof Set) for (const x of v) objects(x, out)
  else if (!ArrayBuffer.isView(v)) for (const k of Object.keys(v)) objects((v as Record<string, unknown>)[k], out)
  return out
}

/**
 * Deep equality that also checks prototypes and key order at every level. `loose`:
 * a Buffer equals a Uint8Array of the same bytes (structuredClone makes Buffers Uint8Arrays).
 */
function sameTree(a: unknown, b: unknown, loose = false): boolean {
  if (typeof a !== 'object' || a === null) return Object.is(a, b)
  if (typeof b !== 'object' || b === null) return false
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b) && !(loose && ArrayBuffer.isView(a) && ArrayBuffer.isView(b))) return false
  if (a instanceof Date) return a.getTime() === (b as Date).getTime() || (Number.isNaN(a.getTime()) && Number.isNaN((b as Date).getTime()))
  if (ArrayBuffer.isView(a)) return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from((b as Uint8Array).buffer, (b as Uint8Array).byteOffset, (b as Uint8Array).byteLength)) === 0
  if (a instanceof Map || a instanceof Set) {
    const x = [...a.entries()]
    const y = [...(b as Map<unknown, unknown>).entries()]
    return x.length === y.length && x.every((e, i) => sameTree(e, y[i], loose))
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false
  return ka.every((k) => Object.hasOwn(b, k) && sameTree((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], loose))
}

describe('shapeCloner', () => {
  beforeEach(() => forgetShapes())

  it('copies exactly what structuredClone copies: same types, prototypes, key order, and no shared object', () => {
    fc.assert(
      fc.property(tree, (v) => {
        // The memo compiles cloners only for the values it keeps (an own '__proto__' key
        // anywhere is refused; the test below covers how a cloner treats one).
        if (!isPlainTree(v)) return
        if (compiledShapes() > MAX_SHAPES - 32) forgetShapes() // keep compiling new shapes
        const clone = shapeCloner(v)
        if (clone === undefined) return // too wide or deep: the memo uses clonePlain
        const c = clone(v)
        expect(sameTree(c, v)).toBe(true)
        expect(sameTree(c, structuredClone(v), true)).toBe(true)
        expect(sameTree(c, clonePlain(v))).toBe(true)
        const mine = objects(v)
        for (const o of objects(c)) expect(mine.has(o)).toBe(false)
      }),
      // Regressions: arrays mixing null and objects (null is typeof 'object').
      { numRuns: 2000, examples: [[[null, {}]], [[{}, null]], [{ a: [null, { b: 1 }] }], [[{ a: 1 }, { b: 1 }]]] },
    )
    // The generator is not vacuous: many of its values are kept by the memo and compiled
    // (counted on a fresh cache of shapes: the run above may have filled it).
    forgetShapes()
    let compiled = 0
    fc.assert(fc.property(tree, (v) => void (isPlainTree(v) && shapeCloner(v) !== undefined && compiled++)), { numRuns: 500 })
    expect(compiled).toBeGreaterThan(100)
  })

  it('keeps an own __proto__ key as an own property, and never changes the prototype', () => {
    const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>
    const c = (shapeCloner(v) as (x: unknown) => Record<string, unknown>)(v)
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype)
    expect(Object.hasOwn(c, '__proto__')).toBe(true)
    expect(c.polluted).toBeUndefined()
    expect(Object.keys(c)).toEqual(['__proto__', 'a'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('treats hostile keys as data: nothing they spell runs', () => {
    const v: Record<string, unknown> = {}
    for (const k of ['"]: 1, x: process.exit(1), ["', '}); throw 1; ({', '\u2028', '\ud800', '\\', '`${globalThis.hit = 1}`']) v[k] = k
    const c = (shapeCloner(v) as (x: unknown) => Record<string, unknown>)(v)
    expect(c).toEqual(v)
    expect((globalThis as Record<string, unknown>).hit).toBeUndefined()
  })

  it('compiles at most MAX_SHAPES shapes; later shapes get none (clonePlain), earlier ones keep theirs', () => {
    const first = shapeCloner({ k0: 0 })
    for (let i = 1; i < MAX_SHAPES; i++) expect(shapeCloner({ [`k${i}`]: i })).toBeDefined()
    expect(compiledShapes()).toBe(MAX_SHAPES)
    expect(shapeCloner({ another: 1 })).toBeUndefined()
    expect(shapeCloner({ nested: { another: 1 } })).toBeUndefined()
    expect(shapeCloner({ k0: 5 })).toBe(first)
    expect(compiledShapes()).toBe(MAX_SHAPES)
    // Values that need no compiled shape still get a cloner.
    expect((shapeCloner([1, 2]) as (v: unknown) => unknown)([1, 2])).toEqual([1, 2])
  })

  it('shares one compiled cloner per shape, and copies arrays of one shape element by element', () => {
    const before = compiledShapes()
    const a = shapeCloner({ q: 1, r: 'x', s: [{ t: 1 }, { t: 2 }] })
    const b = shapeCloner({ q: 2, r: 'y', s: [{ t: 3 }] })
    expect(a).toBe(b)
    expect(compiledShapes() - before).toBe(2) // the object and its elements' shape
    const v = { q: 1, r: 'x', s: [{ t: 1 }, { t: 2 }] }
    const c = (a as (x: unknown) => typeof v)(v)
    expect(c).toEqual(v)
    expect(c.s[0]).not.toBe(v.s[0])
  })
})
