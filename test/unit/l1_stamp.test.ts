import { beforeAll, describe, expect, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { NEGATIVE, SAME, SharedTable } from '../../src/l1/shared_table.js'
import { RecordStamp } from '../../src/l1/table_index.js'

const te = new TextEncoder()
const td = new TextDecoder()
const text = (b: Uint8Array | null) => (b === null ? null : b === NEGATIVE ? 'NEGATIVE' : b === SAME ? 'SAME' : td.decode(b))

beforeAll(async () => {
  await initHash()
})

/** The stamp of the record `key` holds now (a copying lookup must find it). */
function stampOf(t: SharedTable, key: string, now = 0): RecordStamp {
  const got = t.lookup(key, now)
  if (got === null || got === NEGATIVE) throw new Error(`${key} is not in the table`)
  const s = new RecordStamp()
  s.copyFrom(t.stamp)
  return s
}

describe('SharedTable.lookup with a known stamp', () => {
  it('answers SAME, copying nothing, while the key holds the very record the stamp was taken from', () => {
    const t = SharedTable.create(1 << 20)
    t.put('k', te.encode('v1'), 0, 0)
    const s = stampOf(t, 'k')
    expect(t.lookup('k', 0, s)).toBe(SAME)
    expect(t.lookup(t.ref('k'), 0, s)).toBe(SAME)
    // Another key's stamp never answers for this one.
    t.put('other', te.encode('v1'), 0, 0)
    expect(text(t.lookup('other', 0, s))).toBe('v1')
  })

  it('answers the new bytes after any rewrite, even of the same bytes, and a new stamp with them', () => {
    const t = SharedTable.create(1 << 20)
    t.put('k', te.encode('same'), 0, 0)
    const s = stampOf(t, 'k')
    t.put('k', te.encode('same'), 0, 0)
    expect(text(t.lookup('k', 0, s))).toBe('same')
    expect(t.stamp.seq).not.toBe(s.seq)
    const s2 = stampOf(t, 'k')
    t.update('k', 0, () => ({ value: te.encode('next'), deadline: 0 }))
    expect(text(t.lookup('k', 0, s2))).toBe('next')
  })

  it('misses after a delete, a namespace invalidation or expiry, and keeps negative entries negative', () => {
    const t = SharedTable.create(1 << 20)
    t.put('ns:a', te.encode('x'), 0, 0)
    const a = stampOf(t, 'ns:a')
    t.take('ns:a', 0)
    expect(t.lookup('ns:a', 0, a)).toBeNull()
    t.put('ns:a', te.encode('x'), 0, 0)
    const again = stampOf(t, 'ns:a')
    expect(again.seq).not.toBe(a.seq)
    t.invalidateRoots(['ns:'])
    expect(t.lookup('ns:a', 0, again)).toBeNull()

    t.put('ttl', te.encode('x'), 100, 0)
    const e = stampOf(t, 'ttl')
    expect(t.lookup('ttl', 99, e)).toBe(SAME)
    expect(t.lookup('ttl', 100, e)).toBeNull()

    t.put('neg', null, 0, 0)
    expect(t.lookup('neg', 0, e)).toBe(NEGATIVE)
  })

  it('reads the clock only for records with a deadline', () => {
    const t = SharedTable.create(1 << 20)
    let reads = 0
    const clock = { now: () => (reads++, 50) }
    t.put('forever', te.encode('x'), 0, 0)
    t.put('ttl', te.encode('x'), 100, 0)
    const f = stampOf(t, 'forever')
    const d = stampOf(t, 'ttl')
    expect(t.lookup('forever', clock, f)).toBe(SAME)
    expect(text(t.lookup('forever', clock))).toBe('x')
    expect(reads).toBe(0)
    expect(t.lookup('ttl', clock, d)).toBe(SAME)
    expect(reads).toBe(1)
    expect(t.lookup('ttl', { now: () => 100 }, d)).toBeNull()
  })

  it('answers the bytes, not SAME, once the record moved to the main ring (the move relinks the slot)', () => {
    const t = SharedTable.create(256 * 1024)
    const value = te.encode('v'.repeat(100))
    t.put('hot', value, 0, 0)
    const s = stampOf(t, 'hot')
    let moved = false
    for (let i = 0; i < 20_000 && !moved; i++) {
      t.put(`cold:${i}`, value, 0, 0)
      const got = t.lookup('hot', 0, s)
      if (got === null) break // evicted: nothing more to see here
      if (got !== SAME) {
        expect(text(got)).toBe(text(value))
        expect(t.stamp.ref).not.toBe(s.ref)
        moved = true
      }
    }
    expect(moved).toBe(true)
    expect(t.checkInvariants()).toEqual([])
  })
})
