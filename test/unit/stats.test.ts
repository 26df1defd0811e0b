import { describe, expect, it } from 'vitest'
import { Field, MAX_NAMESPACES, MAX_THREAD_ROWS, NsField, OTHER_NAMESPACE, ProcField, StatsBlock } from '../../src/observability/stats.js'
import { histogramQuantile, HISTOGRAM_BOUNDS_MS } from '../../src/observability/stats_histogram.js'

const both = { l1: true, l2: true }

describe('StatsBlock', () => {
  it('two blocks on one buffer (two threads) agree on namespace blocks and sum their rows', () => {
    const a = new StatsBlock(undefined, both)
    const b = new StatsBlock(a.sab, both)
    a.namespace('shop').add(NsField.Sets, 2)
    b.namespace('blog').add(NsField.Sets, 5)
    b.namespace('shop').add(NsField.Sets, 3)
    a.namespace('shop').lookup(true, true, 0)
    b.namespace('shop').lookup(false, false, 0)
    const s = a.snapshot(undefined)
    expect(Object.keys(s.namespaces).sort()).toEqual(['blog', 'shop'])
    expect(s.namespaces.shop).toMatchObject({ sets: 5, hits: { l1: 1, l2: 0 }, misses: { l1: 0, l2: 1 } })
    expect(s.namespaces.blog?.sets).toBe(5)
    expect(b.snapshot(undefined).namespaces).toEqual(s.namespaces)
  })

  it('attributes an eviction to the longest namespace that prefixes the key', () => {
    const a = new StatsBlock(undefined, both)
    a.namespace('app')
    a.namespace('app:users')
    a.namespace('ap')
    a.evicted('app:users:1')
    a.evicted('app:user')
    a.evicted('app:users') // the key 'users' of namespace app
    a.evicted('ap:x')
    a.evicted('apple:1') // no namespace: the overflow block
    const s = a.snapshot(undefined)
    expect(s.namespaces['app:users']?.evictions).toBe(1)
    expect(s.namespaces.app?.evictions).toBe(2)
    expect(s.namespaces.ap?.evictions).toBe(1)
    expect(s.namespaces[OTHER_NAMESPACE]?.evictions).toBe(1)
  })

  it('counts namespaces past the table size under (other)', () => {
    const a = new StatsBlock(undefined, both)
    for (let i = 0; i < MAX_NAMESPACES + 5; i++) a.namespace(`ns${i}`).add(NsField.Sets)
    const s = a.snapshot(undefined)
    expect(Object.keys(s.namespaces)).toHaveLength(MAX_NAMESPACES)
    expect(s.namespaces[OTHER_NAMESPACE]?.sets).toBe(6)
    expect(s.namespaces.ns0?.sets).toBe(1)
  })

  it('L1 lookup samples weigh 16 in the histogram; L2 ones 1', () => {
    const a = new StatsBlock(undefined, both)
    const m = a.namespace('x')
    m.lookup(true, true, performance.now())
    m.lookup(false, true, performance.now() - 3)
    const s = a.snapshot(undefined).namespaces.x!
    expect(s.latency.l1.count).toBe(16)
    expect(s.latency.l2.count).toBe(1)
    expect(s.latency.l2.sumMs).toBeGreaterThanOrEqual(3)
    // 3 ms falls in the (2.5, 5] bucket.
    expect(s.latency.l2.counts[HISTOGRAM_BOUNDS_MS.indexOf(5)]).toBe(1)
  })

  it('histogramQuantile interpolates within a bucket and is undefined when empty', () => {
    const bounds = [1, 10]
    expect(histogramQuantile({ bounds, counts: [0, 0, 0], count: 0, sumMs: 0 }, 0.5)).toBeUndefined()
    expect(histogramQuantile({ bounds, counts: [10, 10, 0], count: 20, sumMs: 0 }, 0.5)).toBe(1)
    expect(histogramQuantile({ bounds, counts: [10, 10, 0], count: 20, sumMs: 0 }, 0.75)).toBe(5.5)
  })

  it('the breaker state one thread records is what every thread reads', () => {
    const a = new StatsBlock(undefined, both)
    const b = new StatsBlock(a.sab, both)
    expect(b.snapshot(undefined).circuit).toBe('closed')
    for (const state of ['open', 'half-open', 'closed'] as const) {
      a.setCircuit(state)
      expect(b.snapshot(undefined).circuit).toBe(state)
    }
  })

  it('each thread gets its own row; threads past the last row share it, and every row is summed once', () => {
    const first = new StatsBlock(undefined, both)
    const blocks = [first, ...Array.from({ length: MAX_THREAD_ROWS + 3 }, () => new StatsBlock(first.sab, both))]
    blocks.forEach((b, i) => {
      b.l1.add(Field.Hits, i + 1)
      b.l2.add(Field.Misses)
      b.process.add(ProcField.ValuesWritten, 2)
      b.namespace('shop').add(NsField.Loads)
    })
    const n = blocks.length
    const s = first.snapshot(undefined)
    expect(s.l1.hits).toBe((n * (n + 1)) / 2)
    expect(s.l2.misses).toBe(n)
    expect(s.process.valuesWritten).toBe(2 * n)
    expect(s.namespaces.shop?.loads).toBe(n)
    // A snapshot reads the shared rows, not the thread's own: the last thread agrees.
    expect(blocks[n - 1]!.snapshot(undefined)).toMatchObject({ l1: { hits: s.l1.hits }, process: { valuesWritten: 2 * n } })
  })

  it('the process figures: set replaces, add adds', () => {
    const a = new StatsBlock(undefined, both)
    a.process.set(ProcField.WriteBehindDepth, 7)
    a.process.set(ProcField.WriteBehindDepth, 3)
    a.process.add(ProcField.DeadLetters, 2)
    a.process.add(ProcField.DeadLetters)
    expect(a.snapshot(undefined).process).toMatchObject({ writeBehindDepth: 3, deadLetters: 3, invalidationsSent: 0 })
  })

  it('rejects a buffer of another size (a handle from another version)', () => {
    expect(() => new StatsBlock(new SharedArrayBuffer(64), both)).toThrow(RangeError)
  })
})
