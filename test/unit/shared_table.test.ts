import { beforeAll, describe, expect, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { computeLayout, kMinBytes } from '../../src/l1/layout.js'
import { NEGATIVE, SharedTable } from '../../src/l1/shared_table.js'

const te = new TextEncoder()
const td = new TextDecoder()
const bytes = (s: string) => te.encode(s)
const text = (b: Uint8Array | null) => (b === null ? null : b === NEGATIVE ? 'NEGATIVE' : td.decode(b))

beforeAll(async () => {
  await initHash()
})

describe('layout', () => {
  it('never exceeds the budget and leaves most of it for data', () => {
    for (const max of [kMinBytes, 1 << 20, 7_777_777, 64 << 20, 256 << 20]) {
      const l = computeLayout(max)
      expect(l.totalBytes).toBeLessThanOrEqual(max)
      expect(l.nShards * l.shardDataBytes).toBeGreaterThan(max * 0.8)
      expect(l.smallBytes).toBeLessThan(l.shardDataBytes)
      expect(l.buckets * l.nShards * 8).toBeGreaterThanOrEqual(max / 128 - l.nShards * 8)
    }
  })
})

describe('SharedTable', () => {
  it('stores, overwrites, takes and expires entries', () => {
    const t = SharedTable.create(1 << 20)
    const now = 1000
    expect(t.lookup('a', now)).toBeNull()
    expect(t.put('a', bytes('one'), 0, now)).toBe(true)
    expect(text(t.lookup('a', now))).toBe('one')
    t.put('a', bytes('two, longer than one'), 0, now)
    expect(text(t.lookup('a', now))).toBe('two, longer than one')
    t.put('b', bytes('short-lived'), now + 10, now)
    expect(text(t.lookup('b', now + 9))).toBe('short-lived')
    expect(t.lookup('b', now + 10)).toBeNull()
    expect(text(t.take('a', now))).toBe('two, longer than one')
    expect(t.lookup('a', now)).toBeNull()
    expect(t.take('a', now)).toBeNull()
    expect(t.usage().entries).toBe(1)
    expect(t.checkInvariants()).toEqual([])
  })

  it('keeps negative entries apart from values', () => {
    const t = SharedTable.create(1 << 20)
    t.put('gone', null, 500, 0)
    expect(t.lookup('gone', 10)).toBe(NEGATIVE)
    expect(t.lookup('gone', 500)).toBeNull()
    t.put('gone', null, 0, 0)
    t.put('gone', bytes('back'), 0, 0)
    expect(text(t.lookup('gone', 0))).toBe('back')
  })

  it('hands out copies, not views into the shared memory', () => {
    const t = SharedTable.create(1 << 20)
    t.put('k', bytes('value'), 0, 0)
    const a = t.lookup('k', 0) as Uint8Array
    a[0] = 0
    expect(text(t.lookup('k', 0))).toBe('value')
    expect(a.buffer).not.toBeInstanceOf(SharedArrayBuffer)
  })

  it('guards fills and writes with the epoch word', () => {
    const t = SharedTable.create(1 << 20)
    const e0 = t.epochOf('k')
    t.put('k', bytes('fresh'), 0, 0) // a write lands while a fill was away at L2
    expect(t.epochOf('k')).not.toBe(e0)
    expect(t.put('k', bytes('stale fill'), 0, 0, { epoch: e0, removeOnRace: false, bump: false })).toBe(false)
    expect(text(t.lookup('k', 0))).toBe('fresh')
    // A write that raced another write removes the key instead of guessing.
    expect(t.put('k', bytes('racing write'), 0, 0, { epoch: e0, removeOnRace: true, bump: true })).toBe(false)
    expect(t.lookup('k', 0)).toBeNull()
    const e1 = t.epochOf('k')
    expect(t.put('k', bytes('fill'), 0, 0, { epoch: e1, removeOnRace: false, bump: false })).toBe(true)
    expect(t.epochOf('k')).toBe(e1)
  })

  it('update runs a read-modify-write under the lock', () => {
    const t = SharedTable.create(1 << 20)
    const inc = () => t.update('n', 0, (cur) => ({ value: bytes(String(Number(text(cur) ?? '0') + 1)), deadline: 0 }))
    for (let i = 0; i < 5; i++) inc()
    expect(text(t.lookup('n', 0))).toBe('5')
    expect(t.update('n', 0, () => undefined)).toBe(false)
    expect(text(t.lookup('n', 0))).toBe('5')
  })

  it('deletes by prefix and counts values, not negative entries', () => {
    const t = SharedTable.create(1 << 20)
    for (let i = 0; i < 50; i++) t.put(`ns:user:${i}`, bytes(`u${i}`), 0, 0)
    t.put('ns:order:1', bytes('o'), 0, 0)
    t.put('ns:user:missing', null, 0, 0)
    t.put('other:user:1', bytes('x'), 0, 0)
    expect(t.deletePrefixes(['ns:user:'])).toBe(50)
    expect(t.lookup('ns:user:3', 0)).toBeNull()
    expect(t.lookup('ns:user:missing', 0)).toBeNull()
    expect(text(t.lookup('ns:order:1', 0))).toBe('o')
    expect(text(t.lookup('other:user:1', 0))).toBe('x')
    expect(t.checkInvariants()).toEqual([])
  })

  it('stays within its budget under churn, evicting and keeping invariants', () => {
    const t = SharedTable.create(kMinBytes)
    let evictions = 0
    t.onEvict = () => evictions++
    const value = bytes('v'.repeat(200))
    for (let i = 0; i < 20_000; i++) {
      t.put(`key:${i}`, value, 0, 0)
      if (i % 3 === 0) t.lookup(`key:${i - 7}`, 0)
    }
    const u = t.usage()
    expect(u.bytes).toBeLessThanOrEqual(u.capacity)
    expect(t.sab.byteLength).toBeLessThanOrEqual(kMinBytes)
    expect(evictions).toBeGreaterThan(15_000)
    expect(u.entries).toBeGreaterThan(100)
    expect(t.checkInvariants()).toEqual([])
    // Whatever is still found is the right value.
    for (let i = 19_000; i < 20_000; i++) {
      const got = t.lookup(`key:${i}`, 0)
      if (got !== null) expect(Buffer.from(got).equals(value)).toBe(true)
    }
  })

  it('drops expired entries first when it needs room; unexpired ones of the same size and use survive', () => {
    // Pairs of same-size records, one expiring at t=50 and one never, written and
    // used twice at t=0 (so neither is a stranger the FIFO would drop anyway).
    // Then, at t=100, 1.5x the capacity in new records pushes every pair through
    // the rings' tails: an expired record there is dropped, a used live one is kept.
    // If expiry were ignored, the expiring records would survive exactly as the
    // live ones do.
    const t = SharedTable.create(kMinBytes)
    const v = bytes('x'.repeat(100))
    const capacity = t.usage().capacity
    const pairs = Math.floor((capacity * 0.3) / 2 / 150)
    for (let i = 0; i < pairs; i++) {
      t.put(`exp:${i}`, v, 50, 0)
      t.put(`live:${i}`, v, 0, 0)
    }
    for (let use = 0; use < 2; use++) {
      for (let i = 0; i < pairs; i++) {
        expect(text(t.lookup(`exp:${i}`, 0))).toBe('x'.repeat(100))
        expect(text(t.lookup(`live:${i}`, 0))).toBe('x'.repeat(100))
      }
    }
    for (let i = 0; i < Math.floor((capacity * 1.5) / 150); i++) t.put(`new:${i}`, v, 0, 100)
    // Looked up as of t=0, when neither had expired: null means the record is gone, not just stale.
    const present = (prefix: string) => Array.from({ length: pairs }, (_, i) => t.lookup(`${prefix}:${i}`, 0)).filter((b) => b !== null).length
    expect(pairs).toBeGreaterThan(100)
    expect(present('exp')).toBe(0)
    expect(present('live')).toBe(pairs)
    expect(t.checkInvariants()).toEqual([])
  })

  it('resists a one-time scan: a hot set survives a scan of 10x the table', () => {
    const t = SharedTable.create(1 << 20)
    const v = bytes('h'.repeat(150))
    const hot = Array.from({ length: 500 }, (_, i) => `hot:${i}`)
    for (let round = 0; round < 3; round++) {
      for (const k of hot) if (t.lookup(k, 0) === null) t.put(k, v, 0, 0)
    }
    const capacity = t.usage().capacity
    const scanCount = Math.ceil((10 * capacity) / 200)
    for (let i = 0; i < scanCount; i++) if (t.lookup(`scan:${i}`, 0) === null) t.put(`scan:${i}`, v, 0, 0)
    const survivors = hot.filter((k) => t.lookup(k, 0) !== null).length
    expect(survivors / hot.length).toBeGreaterThan(0.9)
    expect(t.checkInvariants()).toEqual([])
  })

  it('refuses records larger than a shard can hold', () => {
    const t = SharedTable.create(kMinBytes)
    t.put('big', bytes('small first'), 0, 0)
    expect(t.put('big', new Uint8Array(t.layout.shardDataBytes), 0, 0)).toBe(false)
    expect(t.lookup('big', 0)).toBeNull()
  })

  it('is shared: a second view over the same buffer sees every change', () => {
    const a = SharedTable.create(7_777_777)
    const b = SharedTable.attach(a.sab)
    expect(b.layout).toEqual(a.layout)
    a.put('k', bytes('from a'), 0, 0)
    expect(text(b.lookup('k', 0))).toBe('from a')
    b.take('k', 0)
    expect(a.lookup('k', 0)).toBeNull()
    expect(() => SharedTable.attach(new SharedArrayBuffer(1024))).toThrow(/not an L1 table/)
  })

  it('recovers a shard whose lock holder died mid-write', () => {
    const t = SharedTable.create(1 << 20)
    t.put('k', bytes('v'), 0, 0)
    const i32 = new Int32Array(t.sab)
    const f64 = new Float64Array(t.sab)
    // Find k's shard by trying each lock: simulate a dead owner on every shard, long ago.
    for (let s = 0; s < t.layout.nShards; s++) {
      i32[t.layout.shardCtlOff / 4 + s * 16] = 9999
      f64[t.layout.lockTimeOff / 8 + s] = 1
    }
    expect(t.put('k', bytes('after recovery'), 0, 0)).toBe(true)
    expect(text(t.lookup('k', 0))).toBe('after recovery')
    expect(t.deletePrefixes(['']))
      .toBeGreaterThanOrEqual(1)
    expect(t.checkInvariants()).toEqual([])
  })
})
