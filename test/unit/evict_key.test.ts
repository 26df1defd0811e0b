import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { kMinBytes } from '../../src/l1/layout.js'
import { SharedTable } from '../../src/l1/shared_table.js'

/**
 * onEvict(readKey): the key reported is the key of the entry that was evicted.
 * Checked against the table itself: every reported key is gone, every key not
 * reported is still there, and there are exactly as many entries left as keys
 * were never reported. Two layouts drive the two eviction paths: large values
 * run the rings out of bytes (S3-FIFO tail eviction), tiny ones run a bucket out
 * of slots (the least-used slot of a full bucket).
 */

beforeAll(async () => {
  await initHash()
})

afterEach(() => {
  vi.restoreAllMocks()
})

type Path = 'evictOne' | 'freeSlot'
/** The private eviction path running right now (set by `tracePaths`). */
let inside: Path | undefined

/** Marks while each of the table's two private eviction paths runs, so onEvict can tell which one reported. */
function tracePaths(): void {
  const proto = SharedTable.prototype as unknown as Record<Path, (...a: unknown[]) => unknown>
  for (const method of ['evictOne', 'freeSlot'] as const) {
    const original = proto[method]
    vi.spyOn(proto, method).mockImplementation(function (this: unknown, ...args: unknown[]) {
      const outer = inside
      inside = method
      try {
        return original.apply(this, args)
      } finally {
        inside = outer
      }
    })
  }
}

function churn(valueBytes: number, keyOf: (i: number) => string, n: number, readBack = false) {
  const t = SharedTable.create(kMinBytes)
  const evicted: string[] = []
  const byPath = { evictOne: 0, freeSlot: 0 }
  let calls = 0
  t.onEvict = (readKey) => {
    calls++
    if (inside) byPath[inside]++
    evicted.push(readKey())
  }
  const value = new Uint8Array(valueBytes).fill(7)
  const keys: string[] = []
  for (let i = 0; i < n; i++) {
    const k = keyOf(i)
    keys.push(k)
    t.put(k, value, 0, 0)
    // A read marks the entry used: it moves on to the main ring instead of being dropped.
    if (readBack) t.lookup(k, 0)
  }
  return { t, evicted, calls, keys, byPath }
}

function checkReported(r: ReturnType<typeof churn>): void {
  const { t, evicted, calls, keys } = r
  expect(evicted.length).toBe(calls)
  const gone = new Set(evicted)
  // Each key is put once, so each can be evicted at most once.
  expect(gone.size).toBe(evicted.length)
  const all = new Set(keys)
  for (const k of evicted) expect(all.has(k), `reported key ${JSON.stringify(k)} was never stored`).toBe(true)
  for (const k of evicted) expect(t.lookup(k, 0), `reported key ${JSON.stringify(k)} is still in the table`).toBeNull()
  for (const k of keys) if (!gone.has(k)) expect(t.lookup(k, 0), `unreported key ${JSON.stringify(k)} is missing`).not.toBeNull()
  expect(t.usage().entries).toBe(keys.length - evicted.length)
  expect(t.checkInvariants()).toEqual([])
}

describe('SharedTable onEvict(readKey)', () => {
  it('reports the evicted keys when the rings run out of bytes', () => {
    tracePaths()
    const r = churn(300, (i) => `ns:item:${i}`, 5000)
    expect(r.evicted.length).toBeGreaterThan(3000)
    expect(r.byPath.evictOne).toBeGreaterThan(3000)
    checkReported(r)
  })

  it('reports the evicted keys when a bucket runs out of slots', () => {
    tracePaths()
    // Records of ~40 bytes kept in the main ring: the index's slots (one per 128
    // bytes of budget) run out before the ring's bytes do.
    const r = churn(0, (i) => `k${i}`, 40_000, true)
    expect(r.byPath.freeSlot).toBeGreaterThan(1000)
    checkReported(r)
  })

  it('decodes keys as UTF-8 (multi-byte characters, long keys)', () => {
    const long = 'x'.repeat(900)
    const r = churn(200, (i) => (i % 3 === 0 ? `ns:ключ:${i}:🙂` : i % 3 === 1 ? `ns:${long}:${i}` : `ns:é${i}`), 4000)
    expect(r.evicted.some((k) => k.includes('🙂'))).toBe(true)
    expect(r.evicted.some((k) => k.includes(long))).toBe(true)
    checkReported(r)
  })

  it('readKey is valid only during the callback', () => {
    const t = SharedTable.create(kMinBytes)
    const readers: (() => string)[] = []
    const keysInCallback: string[] = []
    t.onEvict = (readKey) => {
      readers.push(readKey)
      if (keysInCallback.length < 3) keysInCallback.push(readKey())
    }
    const value = new Uint8Array(300)
    for (let i = 0; i < 2000 && readers.length < 3; i++) t.put(`late:${i}`, value, 0, 0)
    expect(keysInCallback.length).toBe(3)
    expect(() => readers[0]!()).toThrow(/only be read during the onEvict callback/)
  })

  it('a callback that never reads the key, and one that throws, leave the table consistent', () => {
    const quiet = churn(300, (i) => `q:${i}`, 3000)
    expect(quiet.t.checkInvariants()).toEqual([])

    const t = SharedTable.create(kMinBytes)
    let calls = 0
    t.onEvict = () => {
      calls++
      throw new Error('observer broke')
    }
    const value = new Uint8Array(300)
    for (let i = 0; i < 3000; i++) expect(t.put(`t:${i}`, value, 0, 0)).toBe(true)
    expect(calls).toBeGreaterThan(1000)
    expect(t.usage().entries).toBe(3000 - calls)
    expect(t.checkInvariants()).toEqual([])
    expect(t.lookup('t:2999', 0)).not.toBeNull()
  })

  it('a callback without parameters still type-checks and counts (the stats wiring)', () => {
    const t = SharedTable.create(kMinBytes)
    let evictions = 0
    t.onEvict = () => evictions++
    const value = new Uint8Array(300)
    for (let i = 0; i < 3000; i++) t.put(`c:${i}`, value, 0, 0)
    expect(evictions).toBe(3000 - t.usage().entries)
  })
})
