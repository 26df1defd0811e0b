// CodecPool against real piscina worker threads (workers/codec_worker.ts through tsx):
// results equal the inline codec's, the size rule, typed errors, crash recovery,
// concurrency, close().
import { isDeepStrictEqual } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { CodecPool, MEASURED } from '../../src/codec/codec_pool.js'
import { deserialize, inflate, serialize } from '../../src/codec/value_codec.js'
import { CacheError, CodecError, InvalidOptionError, InvalidValueError, ValueTooLargeError } from '../../src/errors.js'

const MAX = 16 * 1024 * 1024
const COMPRESS = 1024
const THRESHOLD = 8 * 1024

/** ~`bytes` of compressible text. */
const text = (bytes: number, seed = 0) => {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'cache', 'value', 'worker', 'thread', 'pool', 'bytes']
  let s = ''
  for (let i = 0; s.length < bytes; i++) s += `${words[(i * 7 + seed) % words.length]}${i % 13} `
  return s.slice(0, bytes)
}

function cyclic() {
  const a: Record<string, unknown> = { name: 'a' }
  const b: Record<string, unknown> = { name: 'b', a }
  a.b = b
  a.self = a
  return a
}

/** Every kind of value the codec supports, with a small and a large (> THRESHOLD encoded) form. */
function samples(large: boolean): [string, unknown][] {
  const pad = large ? text(20_000) : 'x'
  const shared = { shared: true, pad }
  return [
    ['object', { id: 1, name: 'n', nested: { deep: [1, 2, { x: null }] }, t: true, f: false, pad }],
    ['array', Array.from({ length: large ? 2000 : 5 }, (_, i) => ({ i, s: `r${i}` }))],
    ['string', large ? text(50_000) : 'short'],
    ...(large ? [] : ([['number', 3.25], ['null', null], ['boolean', false], ['empty string', '']] as [string, unknown][])),
    ['Map', new Map<unknown, unknown>([['k', { v: 1 }], [2, pad], [{ o: 1 }, 'object key']])],
    ['Set', new Set([1, 'two', pad, { three: 3 }])],
    ['Date', { when: new Date(1_700_000_000_123), pad }],
    ['bigint', { small: 5n, huge: 2n ** 200n + 1n, neg: -(2n ** 80n), pad }],
    ['Buffer', large ? Buffer.from(text(40_000)) : Buffer.from('bytes')],
    ['typed arrays', { f64: new Float64Array([1.5, -2]), u8: new Uint8Array([1, 2, 3]), pad }],
    ['RegExp', { re: /ab+c/gi, pad }],
    ['shared references', { one: shared, two: shared }],
    ['cyclic', large ? Object.assign(cyclic(), { pad }) : cyclic()],
  ]
}

/** What the inline codec answers for `value`: the reference every pool result must equal. */
const inlineRoundTrip = (value: unknown) => {
  const e = serialize(value, MAX, COMPRESS)
  return deserialize(inflate(e.stored, e.compressed, MAX))
}

let pool: CodecPool

beforeAll(async () => {
  pool = await CodecPool.create({ threads: 1, threshold: THRESHOLD, adaptive: false })
})
afterAll(async () => {
  await pool.close()
})

describe('round trips', () => {
  for (const large of [false, true]) {
    describe(large ? 'large values (worker)' : 'small values (inline)', () => {
      for (const [name, value] of samples(large)) {
        it(name, async () => {
          const before = pool.stats()
          const enc = await pool.encode(value, MAX, COMPRESS)
          const ref = serialize(value, MAX, COMPRESS)
          // Byte for byte what the inline codec stores (LZ4 is deterministic).
          expect(Buffer.from(enc.raw).equals(Buffer.from(ref.raw))).toBe(true)
          expect(enc.compressed).toBe(ref.compressed)
          expect(Buffer.from(enc.stored).equals(Buffer.from(ref.stored))).toBe(true)
          const back = await pool.decode(enc.stored, enc.compressed, MAX)
          expect(isDeepStrictEqual(back, inlineRoundTrip(value))).toBe(true)
          if (typeof value === 'object' && value !== null) expect(back).not.toBe(value)
          const after = pool.stats()
          if (large) expect(enc.raw.length).toBeGreaterThanOrEqual(THRESHOLD)
          // A large value whose LZ4 form is smaller goes to the worker both ways; small ones never do.
          const offloaded = after.offloaded - before.offloaded
          if (large && enc.compressed) expect(offloaded).toBe(2)
          if (!large) expect(offloaded).toBe(0)
        })
      }
    })
  }

  it('keeps the types: Map, Set, Date, bigint, Buffer, cycles', async () => {
    const value = {
      m: new Map([['a', 1]]),
      s: new Set([1]),
      d: new Date(5),
      big: 2n ** 100n,
      buf: Buffer.from('hi'),
      pad: text(30_000),
    }
    const enc = await pool.encode(value, MAX, COMPRESS)
    const back = (await pool.decode(enc.stored, enc.compressed, MAX)) as typeof value
    expect(back.m).toBeInstanceOf(Map)
    expect(back.s).toBeInstanceOf(Set)
    expect(back.d).toBeInstanceOf(Date)
    expect(back.d.getTime()).toBe(5)
    expect(back.big).toBe(2n ** 100n)
    expect(Buffer.isBuffer(back.buf)).toBe(true)
    const c = cyclic()
    const e2 = await pool.encode(Object.assign(c, { pad: text(30_000) }), MAX, COMPRESS)
    const cb = (await pool.decode(e2.stored, e2.compressed, MAX)) as Record<string, Record<string, unknown>>
    expect(cb.self).toBe(cb)
    expect(cb.b?.a).toBe(cb)
  })

  it('stores incompressible large values uncompressed, as serialize does', async () => {
    const crypto = await import('node:crypto')
    const noise = crypto.randomBytes(50_000)
    const enc = await pool.encode(noise, MAX, COMPRESS)
    expect(enc.compressed).toBe(false)
    expect(enc.stored).toBe(enc.raw)
    expect(Buffer.from((await pool.decode(enc.stored, false, MAX)) as Uint8Array).equals(noise)).toBe(true)
  })

  it('does no LZ4 work below compressThreshold, whatever the size', async () => {
    const before = pool.stats()
    const enc = await pool.encode(text(100_000), MAX, Infinity)
    expect(enc.compressed).toBe(false)
    expect(pool.stats().offloaded).toBe(before.offloaded)
    expect(await pool.decode(enc.stored, false, MAX)).toBe(text(100_000))
  })
})

describe('the size rule', () => {
  it('small values stay inline, large ones go to the worker', async () => {
    const before = pool.stats()
    const small = await pool.encode({ a: text(2000) }, MAX, COMPRESS)
    expect(small.compressed).toBe(true)
    await pool.decode(small.stored, small.compressed, MAX)
    let s = pool.stats()
    expect(s.encode.inline - before.encode.inline).toBe(1)
    expect(s.decode.inline - before.decode.inline).toBe(1)
    expect(s.offloaded).toBe(before.offloaded)

    const large = await pool.encode({ a: text(100_000) }, MAX, COMPRESS)
    await pool.decode(large.stored, large.compressed, MAX)
    s = pool.stats()
    expect(s.encode.offloaded - before.encode.offloaded).toBe(1)
    expect(s.decode.offloaded - before.decode.offloaded).toBe(1)
    expect(s.threshold).toEqual({ compress: THRESHOLD, inflate: THRESHOLD })
    expect(s.inFlight).toBe(0)
  })

  it('defaults: the measured thresholds per direction, not adaptive', async () => {
    const p = await CodecPool.create({ threads: 1 })
    try {
      expect(p.stats().threshold).toEqual({ compress: MEASURED.compress.threshold, inflate: MEASURED.inflate.threshold })
      expect(p.stats().adaptive).toBe(false)
      expect(p.stats().threads).toBeGreaterThanOrEqual(1)
    } finally {
      await p.close()
    }
  })

  it('adaptive: the thresholds follow the measured LZ4 cost per byte, within bounds', async () => {
    const p = await CodecPool.create({ threads: 1, adaptive: true })
    try {
      const start = p.stats().threshold
      expect(p.stats().adaptive).toBe(true)
      // Text compresses more slowly per byte than the records the defaults were measured on.
      for (let i = 0; i < 200; i++) {
        const e = await p.encode(text(start.compress / 2, i), MAX, COMPRESS)
        await p.decode(e.stored, e.compressed, MAX)
      }
      const now = p.stats().threshold
      expect(now.compress).not.toBe(start.compress)
      expect(now.compress).toBeGreaterThanOrEqual(start.compress / 4)
      expect(now.compress).toBeLessThanOrEqual(start.compress * 4)
      expect(now.inflate).toBeGreaterThanOrEqual(start.inflate / 4)
      expect(now.inflate).toBeLessThanOrEqual(start.inflate * 4)
    } finally {
      await p.close()
    }
  })

  it('rejects bad options with E_INVALID_OPTION', async () => {
    await expect(CodecPool.create({ threads: 0 })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(CodecPool.create({ threads: 1.5 })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(CodecPool.create({ threshold: -1 })).rejects.toBeInstanceOf(InvalidOptionError)
  })
})

describe('errors', () => {
  const codeOf = async (p: Promise<unknown>) => {
    const err = await p.then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(CacheError)
    return (err as CacheError).code
  }

  it('functions, symbols and undefined: E_INVALID_VALUE, small or large', async () => {
    for (const bad of [undefined, () => 1, Symbol('s'), { f: () => 1 }, { pad: text(50_000), deep: [{ fn() {} }] }, { pad: text(50_000), s: Symbol('x') }]) {
      const err = await pool.encode(bad, MAX, COMPRESS).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(InvalidValueError)
      expect((err as CacheError).code).toBe('E_INVALID_VALUE')
    }
  })

  it('over maxValueBytes: E_VALUE_TOO_LARGE, small or large', async () => {
    expect(await codeOf(pool.encode(text(2000), 1000, COMPRESS))).toBe('E_VALUE_TOO_LARGE')
    const err = await pool.encode(text(200_000), 100_000, COMPRESS).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ValueTooLargeError)
  })

  it('a corrupt payload rejects decode with the inline decoder\'s error, inline or in the worker', async () => {
    const good = serialize(text(100_000), MAX, COMPRESS)
    expect(good.compressed).toBe(true)
    // Claims 100 kB, then garbage: the worker (size >= threshold) fails to inflate it.
    const bad = Buffer.from(good.stored)
    bad.fill(0xff, 8)
    const inlineErr = (() => {
      try {
        deserialize(inflate(bad, true, MAX))
        return undefined
      } catch (e) {
        return e as Error
      }
    })()
    expect(inlineErr).toBeInstanceOf(Error)
    const before = pool.stats()
    const workerErr = await pool.decode(bad, true, MAX).catch((e: unknown) => e)
    expect(pool.stats().decode.offloaded).toBe(before.decode.offloaded + 1)
    expect(workerErr).toBeInstanceOf(Error)
    expect(workerErr).not.toBeInstanceOf(CodecError)
    expect((workerErr as Error).message).toBe(inlineErr?.message)
    // Small and truncated: inline.
    await expect(pool.decode(Buffer.from([1, 0]), true, MAX)).rejects.toThrow(/truncated/)
    // The pool still works.
    const ok = await pool.encode(text(60_000), MAX, COMPRESS)
    expect(await pool.decode(ok.stored, ok.compressed, MAX)).toBe(text(60_000))
  })

  it('a payload declaring more than maxValueBytes is refused on this thread, before anything is handed to a worker', async () => {
    const big = serialize(Buffer.alloc(4 * 1024 * 1024), MAX, COMPRESS) // ~16 KB of LZ4 declaring 4 MiB
    expect(big.compressed).toBe(true)
    const before = pool.stats()
    await expect(pool.decode(big.stored, true, 1024 * 1024)).rejects.toThrow(/claims \d+ bytes, over maxValueBytes/)
    expect(pool.stats().decode).toEqual(before.decode)
    // Under the limit it is offloaded (over the threshold) and decodes.
    expect(Buffer.from((await pool.decode(big.stored, true, MAX)) as Uint8Array).equals(Buffer.alloc(4 * 1024 * 1024))).toBe(true)
    expect(pool.stats().decode.offloaded).toBe(before.decode.offloaded + 1)
  })

  it('the worker refuses to inflate past maxValueBytes (a task sent with a lower limit than the header allows)', async () => {
    // 2 MiB of msgpack bytes (a bin32 of zeros) behind LZ4; the limit sits between header check and inflate: the header
    // check passes at 2 MiB, and the walk after inflating accepts it: both limits agree on the same maxValueBytes.
    const enc = serialize(Buffer.alloc(2 * 1024 * 1024 - 5), MAX, COMPRESS)
    await expect(pool.decode(enc.stored, true, 2 * 1024 * 1024 - 1)).rejects.toThrow(/over maxValueBytes/)
    expect(Buffer.from((await pool.decode(enc.stored, true, 2 * 1024 * 1024)) as Uint8Array).length).toBe(2 * 1024 * 1024 - 5)
  })
})

describe('worker crashes', () => {
  for (const how of ['exit', 'throw'] as const) {
    it(`a worker that dies (${how}) fails only what it carried, with E_CODEC; the next calls work`, async () => {
      const p = await CodecPool.create({ threads: 1, threshold: THRESHOLD, adaptive: false, workSharing: false })
      try {
        const value = { rows: text(60_000) }
        const crash = p.crashWorkerForTest(how).catch((e: unknown) => e)
        // Handed over in the same tick: these ride the dying worker or wait for its replacement.
        const bystanders = Array.from({ length: 8 }, () => p.encode(value, MAX, COMPRESS).then((e) => e, (e: unknown) => e))
        const err = await crash
        expect(err).toBeInstanceOf(CodecError)
        expect((err as CodecError).code).toBe('E_CODEC')
        expect(err).toBeInstanceOf(CacheError)
        const ref = serialize(value, MAX, COMPRESS)
        for (const r of await Promise.all(bystanders)) {
          if (r instanceof Error) expect((r as CacheError).code).toBe('E_CODEC')
          else expect(Buffer.from((r as { stored: Uint8Array }).stored).equals(Buffer.from(ref.stored))).toBe(true)
        }
        const failures = p.stats().workerFailures
        expect(failures).toBeGreaterThanOrEqual(1)
        // The replacement worker serves the next calls.
        const before = p.stats().offloaded
        for (let i = 0; i < 3; i++) {
          const e = await p.encode(value, MAX, COMPRESS)
          expect(await p.decode(e.stored, e.compressed, MAX)).toEqual(value)
        }
        expect(p.stats().offloaded - before).toBe(6)
        expect(p.stats().workerFailures).toBe(failures)
        expect(p.stats().inFlight).toBe(0)
      } finally {
        await p.close()
      }
    })
  }

  it('with two workers, work on the surviving one completes', async () => {
    const p = await CodecPool.create({ threads: 2, threshold: THRESHOLD, adaptive: false, workSharing: false })
    try {
      const value = { rows: text(60_000) }
      const crash = p.crashWorkerForTest('exit').catch((e: unknown) => e)
      const others = await Promise.all(Array.from({ length: 20 }, () => p.encode(value, MAX, COMPRESS).then(() => 'ok', (e: unknown) => (e as CacheError).code)))
      expect((await crash as CacheError).code).toBe('E_CODEC')
      expect(others.filter((o) => o !== 'ok' && o !== 'E_CODEC')).toEqual([])
      expect(others.filter((o) => o === 'ok').length).toBeGreaterThan(0)
      const e = await p.encode(value, MAX, COMPRESS)
      expect(await p.decode(e.stored, e.compressed, MAX)).toEqual(value)
    } finally {
      await p.close()
    }
  })
})

describe('concurrency', () => {
  it('1000 parallel encodes and decodes, inline and offloaded, all correct', async () => {
    const p = await CodecPool.create({ threads: 1, threshold: THRESHOLD, adaptive: false })
    try {
      const values = Array.from({ length: 1000 }, (_, i) => (i % 4 === 0 ? { i, big: text(20_000 + i, i) } : { i, small: text(100 + i, i) }))
      const encoded = await Promise.all(values.map((v) => p.encode(v, MAX, COMPRESS)))
      encoded.forEach((e, i) => {
        const ref = serialize(values[i], MAX, COMPRESS)
        expect(Buffer.from(e.stored).equals(Buffer.from(ref.stored))).toBe(true)
      })
      const decoded = await Promise.all(encoded.map((e) => p.decode(e.stored, e.compressed, MAX)))
      expect(decoded).toEqual(values)
      const s = p.stats()
      expect(s.encode.inline + s.encode.offloaded).toBe(1000)
      expect(s.decode.inline + s.decode.offloaded).toBe(1000)
      expect(s.encode.offloaded).toBeGreaterThan(0)
      expect(s.inFlight).toBe(0)
    } finally {
      await p.close()
    }
  })

  it('work sharing: a burst larger than the worker keeps up with is partly done inline', async () => {
    const p = await CodecPool.create({ threads: 1, threshold: THRESHOLD, adaptive: false })
    // The pool weighs the workers' estimated backlog against performance.now(). The
    // clock stands still during the burst, so the burst takes no time at all: provably
    // more than a worker keeps up with, on any machine however slow or busy.
    let now = performance.now()
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now)
    try {
      const values = Array.from({ length: 64 }, (_, i) => new Uint8Array(Buffer.from(text(400_000, i))))
      const pending = values.map((v) => p.encode(v, MAX, COMPRESS))
      const burst = p.stats().encode
      // The first calls are handed over until the backlog is over twice a call's inline cost; the rest are done here.
      expect(burst.offloaded).toBeGreaterThan(0)
      expect(burst.inline).toBeGreaterThan(0)
      expect(burst.offloaded + burst.inline).toBe(64)
      // Once the clock has moved past the estimated backlog, the next call is handed over again.
      now += 60_000
      pending.push(p.encode(values[0], MAX, COMPRESS))
      expect(p.stats().encode.offloaded).toBe(burst.offloaded + 1)
      clock.mockRestore()
      const encoded = await Promise.all(pending)
      const decoded = (await Promise.all(encoded.map((e) => p.decode(e.stored, e.compressed, MAX)))) as Uint8Array[]
      expect(decoded.map((d, i) => Buffer.from(d).equals(Buffer.from(values[i % 64] as Uint8Array)))).toEqual(encoded.map(() => true))
    } finally {
      clock.mockRestore()
      await p.close()
    }
  })
})

describe('close()', () => {
  it('lets in-flight work finish, then later calls reject with E_CODEC', async () => {
    const p = await CodecPool.create({ threads: 1, threshold: THRESHOLD, adaptive: false, workSharing: false })
    const value = text(80_000)
    const inFlight = Array.from({ length: 5 }, () => p.encode(value, MAX, COMPRESS))
    expect(p.stats().inFlight).toBe(5)
    const closing = p.close()
    const results = await Promise.all(inFlight)
    for (const r of results) expect(r.compressed).toBe(true)
    await closing
    for (const call of [p.encode(1, MAX, COMPRESS), p.decode(Buffer.from([0xc0]), false, MAX)]) {
      const err = await call.catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CodecError)
      expect((err as CodecError).code).toBe('E_CODEC')
    }
    await p.close() // twice is fine
  })
})
