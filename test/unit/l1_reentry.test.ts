// Issue 13: a key that leaves L1 only because its copy expired, while it is still
// hot, goes back where its frequency says (main), not into the small FIFO as a
// stranger that the churn of cold keys pushes out before its second hit.
import { beforeAll, describe, expect, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { kRecordHeader } from '../../src/l1/layout.js'
import { SharedTable } from '../../src/l1/shared_table.js'

const MB = 1024 * 1024
const key = (i: number) => `cold:${String(i).padStart(7, '0')}`
const value = new Uint8Array(100).fill(7)
const RECORD = (kRecordHeader + 12 + value.length + 7) & ~7
const hotKey = (i: number) => `hot:${i}`

beforeAll(async () => {
  await initHash()
})

describe('L1 re-entry of hot keys whose copies expired', () => {
  it('hot keys that expire during cold churn come back in main and survive the churn', () => {
    const t = SharedTable.create(MB)
    const capacity = t.usage().capacity
    const churn = (n: number, now: number, start: number) => {
      // Strangers: written once, never read.
      for (let i = 0; i < n; i++) t.put(key(start + i), value, 0, now)
      return start + n
    }
    const HOT = 64
    let next = churn(Math.ceil((2 * capacity) / RECORD), 0, 0) // full: eviction is on
    // The hot keys: copies that expire at 1000, read often while fresh (they reach main and stay there).
    for (let h = 0; h < HOT; h++) t.put(hotKey(h), value, 1000, 0)
    for (let round = 0; round < 8; round++) {
      for (let h = 0; h < HOT; h++) for (let r = 0; r < 3; r++) expect(t.lookup(hotKey(h), 0)).not.toBeNull()
      next = churn(Math.ceil(capacity / RECORD / 4), 0, next)
    }
    // Their copies expire; cold churn goes on long enough for main's tail to pass them.
    next = churn(Math.ceil((1.5 * capacity) / RECORD), 2000, next)
    for (let h = 0; h < HOT; h++) expect(t.lookup(hotKey(h), 2000)).toBeNull()
    // The refills (as TieredStore does after the miss), then more cold churn with no reads of the hot keys.
    for (let h = 0; h < HOT; h++) t.put(hotKey(h), value, 0, 2000)
    churn(Math.ceil((2 * capacity) / RECORD), 2000, next)
    const kept = Array.from({ length: HOT }, (_, h) => t.lookup(hotKey(h), 2000) !== null).filter(Boolean).length
    expect(kept).toBe(HOT)
    expect(t.checkInvariants()).toEqual([])
  })

  it('an expired copy is never served, neither before nor after its ring tail passes it', () => {
    const t = SharedTable.create(MB)
    const capacity = t.usage().capacity
    let next = 0
    for (; next < Math.ceil((2 * capacity) / RECORD); next++) t.put(key(next), value, 0, 0)
    t.put('hot', value, 100, 0)
    for (let r = 0; r < 3; r++) expect(t.lookup('hot', 0)).not.toBeNull()
    expect(t.lookup('hot', 100)).toBeNull()
    for (let n = 0; n < 4 * capacity / RECORD; n++) {
      t.put(key(next++), value, 0, 200)
      // Also for a reader whose clock lags (it read the time before the ring passed the record).
      if (n % 97 === 0) {
        expect(t.lookup('hot', 200)).toBeNull()
        expect(t.lookup('hot', 99)).toSatisfy((v: Uint8Array | null) => v === null || v.length === value.length)
      }
    }
    expect(t.checkInvariants()).toEqual([])
  })
})
