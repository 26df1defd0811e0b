import { beforeAll, describe, expect, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { kMinBytes, kRootGens } from '../../src/l1/layout.js'
import { rootIndexOf, SharedTable } from '../../src/l1/shared_table.js'

/**
 * Root generations: invalidateRoots drops a root namespace's L1 entries (its data,
 * its children's and its tag epochs) in O(1), leaves other roots alone, voids
 * fills that started before it, and the space of what it dropped is reused.
 */
const v = new Uint8Array([1, 2, 3])
const enc = new TextEncoder()
const idx = (s: string) => rootIndexOf(enc.encode(s), enc.encode(s).length)
/** Two roots on different generation words. */
const A = 'shop'
let B = 'blog'

beforeAll(async () => {
  await initHash()
  for (let i = 0; idx(`${B}:`) === idx(`${A}:`); i++) B = `blog${i}`
})

describe('root generations', () => {
  it('a root is the first segment, and tag epochs belong to the namespace they name', () => {
    expect(idx('shop:users:1')).toBe(idx('shop:'))
    expect(idx('__nc|t|shop|tag')).toBe(idx('shop:'))
    expect(idx('__nc|t|shop:users|tag')).toBe(idx('shop:'))
    expect(idx('shop')).toBe(idx('shop:'))
    for (const k of ['a:b', 'zzz:1', '__nc|l|x']) expect(idx(k)).toBeLessThan(kRootGens)
  })

  it('drops every entry of the root and only those', () => {
    const t = SharedTable.create(kMinBytes)
    const now = 1000
    for (const k of [`${A}:1`, `${A}:users:2`, `__nc|t|${A}|tag`, `__nc|t|${A}:users|tag`, `${B}:1`, `__nc|t|${B}|tag`]) t.put(k, v, 0, now)
    t.invalidateRoots([`${A}:users:`])
    for (const k of [`${A}:1`, `${A}:users:2`, `__nc|t|${A}|tag`, `__nc|t|${A}:users|tag`]) expect(t.lookup(k, now)).toBeNull()
    for (const k of [`${B}:1`, `__nc|t|${B}|tag`]) expect(Buffer.from(t.lookup(k, now) ?? [])).toEqual(Buffer.from(v))
    // Written after the bump: visible again.
    t.put(`${A}:1`, v, 0, now)
    expect(Buffer.from(t.lookup(`${A}:1`, now) ?? [])).toEqual(Buffer.from(v))
    expect(t.take(`${A}:users:2`, now)).toBeNull()
  })

  it("a prefix whose root cannot be told ('' or no separator) drops the whole table", () => {
    for (const p of ['', 'sho', '__nc|t|sho']) {
      const t = SharedTable.create(kMinBytes)
      t.put(`${A}:1`, v, 0, 1)
      t.put(`${B}:1`, v, 0, 1)
      t.invalidateRoots([p])
      expect(t.lookup(`${A}:1`, 1)).toBeNull()
      expect(t.lookup(`${B}:1`, 1)).toBeNull()
    }
  })

  it('voids a fill that read its guard before the bump', () => {
    const t = SharedTable.create(kMinBytes)
    const guard = t.epochOf(`${A}:k`)
    t.invalidateRoots([`${A}:`])
    expect(t.put(`${A}:k`, v, 0, 1, { epoch: guard, removeOnRace: false, bump: false })).toBe(false)
    expect(t.lookup(`${A}:k`, 1)).toBeNull()
    // Another root's fill is not voided.
    const other = t.epochOf(`${B}:k`)
    t.invalidateRoots([`${A}:`])
    expect(t.put(`${B}:k`, v, 0, 1, { epoch: other, removeOnRace: false, bump: false })).toBe(true)
  })

  it('reclaims the space of dropped entries; the table stays consistent through many bumps', () => {
    const t = SharedTable.create(kMinBytes)
    const big = new Uint8Array(200)
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 400; i++) t.put(`${A}:${round}:${i}`, big, 0, 1)
      t.invalidateRoots([`${A}:`])
      expect(t.lookup(`${A}:${round}:399`, 1)).toBeNull()
    }
    for (let i = 0; i < 400; i++) t.put(`${A}:last:${i}`, big, 0, 1)
    expect(Buffer.from(t.lookup(`${A}:last:399`, 1) ?? [])).toEqual(Buffer.from(big))
    expect(t.checkInvariants()).toEqual([])
  })
})
