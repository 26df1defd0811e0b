// Issue 16: the L1 must use its whole byte budget before it evicts anything.
// The budget is the data area (usage().capacity, what stats().l1.capacity shows),
// and an entry costs its whole record: ALIGN(header + key + value) bytes.
import { beforeAll, describe, expect, it } from 'vitest'
import { initHash, murmur3_32 } from '../../wasm/hash.js'
import { kRecordHeader } from '../../src/l1/layout.js'
import { SharedTable } from '../../src/l1/shared_table.js'

const te = new TextEncoder()
const MB = 1024 * 1024
// 'item:0000001' (12 bytes) + a 100-byte value + the 32-byte header: a 144-byte record.
const key = (i: number) => `item:${String(i).padStart(7, '0')}`
const value = new Uint8Array(100).fill(7)
const RECORD = (kRecordHeader + 12 + value.length + 7) & ~7

beforeAll(async () => {
  await initHash()
})

/** The shard a key lives in: the top bits of its hash, as the table computes it. */
function shardOf(t: SharedTable, k: string): number {
  const b = te.encode(k)
  return (murmur3_32(b, b.length) | 0) >>> (32 - Math.log2(t.layout.nShards))
}

/** Writes entries totalling `share` of the budget, then reads each one back: found share, overall and at the worst shard. */
function fillThenRead(maxBytes: number, share: number): { found: number; worstShard: number; evictions: number } {
  const t = SharedTable.create(maxBytes)
  let evictions = 0
  t.onEvict = () => evictions++
  const n = Math.floor((share * t.usage().capacity) / RECORD)
  for (let i = 0; i < n; i++) t.put(key(i), value, 0, 0)
  const written = new Array<number>(t.layout.nShards).fill(0)
  const kept = new Array<number>(t.layout.nShards).fill(0)
  let found = 0
  for (let i = 0; i < n; i++) {
    const k = key(i)
    const s = shardOf(t, k)
    written[s]!++
    if (t.lookup(k, 0) !== null) {
      kept[s]!++
      found++
    }
  }
  expect(t.checkInvariants()).toEqual([])
  const worstShard = Math.min(...kept.map((k, s) => k / (written[s] as number)))
  return { found: found / n, worstShard, evictions }
}

describe('L1 capacity: nothing is evicted while the budget has room', () => {
  for (const [share, want] of [
    [0.5, 0.999],
    [0.8, 0.999],
    [0.95, 0.99],
  ] as const) {
    it(`64 MB written to ${share * 100}% of its budget finds at least ${want * 100}% (worst shard too)`, () => {
      const r = fillThenRead(64 * MB, share)
      expect(r.found).toBeGreaterThanOrEqual(want)
      expect(r.worstShard).toBeGreaterThanOrEqual(want)
    })
  }

  it('128 MB written to 95% of its budget finds at least 99% (worst shard too)', { timeout: 300_000 }, () => {
    const r = fillThenRead(128 * MB, 0.95)
    expect(r.found).toBeGreaterThanOrEqual(0.99)
    expect(r.worstShard).toBeGreaterThanOrEqual(0.99)
  })

  it('a table written with twice its budget holds records totalling at least 90% of it', { timeout: 300_000 }, () => {
    const t = SharedTable.create(64 * MB)
    const capacity = t.usage().capacity
    // An entry is charged its whole record: ALIGN(header + key + value).
    t.put(key(0), value, 0, 0)
    expect(t.usage().bytes).toBe(RECORD)
    expect(RECORD).toBe(144)
    const n = Math.floor((2 * capacity) / RECORD)
    for (let i = 0; i < n; i++) t.put(key(i), value, 0, 0)
    let held = 0
    for (let i = 0; i < n; i++) if (t.lookup(key(i), 0) !== null) held++
    expect(held * RECORD).toBeGreaterThanOrEqual(0.9 * capacity)
    expect(t.usage().entries).toBe(held)
    expect(t.checkInvariants()).toEqual([])
  })

  it('a hot key refilled after its copy expired and was dropped comes back into main, not as a stranger', () => {
    const t = SharedTable.create(MB)
    const flood = Math.ceil((2 * t.usage().capacity) / RECORD)
    let next = 0
    for (; next < flood; next++) t.put(key(next), value, 0, 0) // full: eviction is on
    t.put('hot', value, 100, 0)
    expect(t.lookup('hot', 0)).not.toBeNull() // used once
    let dropped = false
    t.onEvict = (readKey) => {
      if (readKey() === 'hot') dropped = true
    }
    while (!dropped) t.put(key(next++), value, 0, 200) // its copy expires and the ring drops it
    t.put('hot', value, 0, 200) // the refill
    // Strangers written once and never read: a stranger would be dropped with them.
    for (let i = 0; i < flood; i++) t.put(key(next++), value, 0, 200)
    expect(t.lookup('hot', 200)).not.toBeNull()
    expect(t.checkInvariants()).toEqual([])
  })
})
