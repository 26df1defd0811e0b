import { afterEach, describe, expect, it, vi } from 'vitest'
import { CostModel, MEASURED } from '../../src/codec/cost_model.js'

/** The codec pool's decisions, driven by a clock the test holds still (no workers, no machine speed). */
describe('CostModel', () => {
  let now = 1_000
  afterEach(() => vi.restoreAllMocks())
  const model = (o: Partial<ConstructorParameters<typeof CostModel>[0]> = {}) => {
    vi.spyOn(performance, 'now').mockImplementation(() => now)
    return new CostModel({ threads: 1, threshold: undefined, adaptive: false, workSharing: true, ...o })
  }

  it('hands over from the measured thresholds, per direction', () => {
    const m = model()
    expect(m.shouldOffload('compress', MEASURED.compress.threshold - 1)).toBe(false)
    expect(m.shouldOffload('compress', MEASURED.compress.threshold)).toBe(true)
    expect(m.shouldOffload('inflate', MEASURED.compress.threshold)).toBe(false)
    expect(m.shouldOffload('inflate', MEASURED.inflate.threshold)).toBe(true)
  })

  it('work sharing: a backlog over twice the inline cost keeps the call inline, until the workers are through', () => {
    const m = model()
    const size = 1024 * 1024
    // The backlog one 1 MiB task adds: size × worker µs/byte; the call's inline cost: size × inline µs/byte.
    for (let i = 0; i < 4; i++) m.began('compress', size)
    expect(m.inFlight).toBe(4)
    expect(m.shouldOffload('compress', size)).toBe(false)
    // The clock moves past the estimated backlog: the next call goes to a worker again.
    now += (4 * size * MEASURED.compress.microsPerByte) / 1000
    expect(m.shouldOffload('compress', size)).toBe(true)
    // With nothing in flight the workers are idle, whatever the estimate said.
    for (let i = 0; i < 4; i++) m.began('compress', size)
    expect(m.shouldOffload('compress', size)).toBe(false)
    for (let i = 0; i < 8; i++) m.ended('compress', size)
    expect(m.inFlight).toBe(0)
    expect(m.shouldOffload('compress', size)).toBe(true)
  })

  it('without work sharing every call over the threshold goes to a worker', () => {
    const m = model({ workSharing: false })
    for (let i = 0; i < 100; i++) m.began('compress', 1024 * 1024)
    expect(m.shouldOffload('compress', MEASURED.compress.threshold)).toBe(true)
  })

  it('adaptive: slower data moves the threshold down, faster data up, within [start / 4, start * 4]', () => {
    const slow = model({ adaptive: true })
    for (let i = 0; i < 200; i++) slow.sampleInline('compress', 100_000, 100_000 * MEASURED.compress.microsPerByte * 4)
    expect(slow.threshold('compress')).toBeLessThan(MEASURED.compress.threshold / 2)
    expect(slow.threshold('compress')).toBeGreaterThanOrEqual(MEASURED.compress.threshold / 4)
    const fast = model({ adaptive: true })
    for (let i = 0; i < 200; i++) fast.sampleInline('compress', 100_000, 100_000 * MEASURED.compress.overheadPerByte * 1.01)
    expect(fast.threshold('compress')).toBe(MEASURED.compress.threshold * 4)
    const fixed = model({ adaptive: false })
    for (let i = 0; i < 200; i++) fixed.sampleInline('compress', 100_000, 100_000 * MEASURED.compress.microsPerByte * 4)
    expect(fixed.threshold('compress')).toBe(MEASURED.compress.threshold)
  })

  it('times one inline call in eight', () => {
    const m = model()
    const timed = Array.from({ length: 64 }, () => m.timeThis('inflate')).filter(Boolean).length
    expect(timed).toBe(8)
  })
})
