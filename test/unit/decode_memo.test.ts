import { describe, expect, it } from 'vitest'
import { clonePlain, DecodeMemo } from '../../src/codec/decode_memo.js'
import type { Memo } from '../../src/codec/decode_memo.js'
import { RecordStamp } from '../../src/l1/table_index.js'
import type { Envelope } from '../../src/codec/envelope.js'

const env = { createdAt: 0, expiresAt: 0, tags: undefined, compressed: false, codec: 0, payload: new Uint8Array() } as Envelope

describe('DecodeMemo', () => {
  it('answers only for the exact bytes it was made from', () => {
    const m = new DecodeMemo()
    const raw = Buffer.from('abc')
    expect(m.remember('k', raw, env, { a: 1 })).toBeUndefined() // first decode: only noted
    expect(m.remember('k', raw, env, { a: 1 })).toBeDefined()
    expect(m.find('k', Buffer.from('abc'))?.value).toEqual({ a: 1 })
    expect(m.find('k', Buffer.from('abd'))).toBeUndefined()
    expect(m.find('k', Buffer.from('abcd'))).toBeUndefined()
    expect(m.find('other', raw)).toBeUndefined()
  })

  it('keeps only plain trees: no shared or cyclic references, no exotic types', () => {
    const m = new DecodeMemo()
    const shared = { s: 1 }
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const raw = Buffer.from('x')
    for (const k of 'abcdefg') m.remember(k, raw, env, 0) // each key seen once before
    expect(m.remember('a', raw, env, { left: shared, right: shared })).toBeUndefined()
    expect(m.remember('b', raw, env, cyclic)).toBeUndefined()
    expect(m.remember('c', raw, env, { r: /x/ })).toBeUndefined()
    expect(m.remember('d', raw, env, { e: new Error('x') })).toBeUndefined()
    expect(m.remember('e', raw, env, Object.create(null))).toBeUndefined()
    expect(m.remember('f', raw, env, JSON.parse('{"__proto__": {"polluted": true}}'))).toBeUndefined()
    expect(m.remember('g', raw, env, { n: [1, 'two', null, true, 3n, new Date(5), new Map([[1, new Set([2])]]), Buffer.from('b'), new Uint8Array([1])] })).toBeDefined()
  })

  it('clonePlain makes deep, independent copies of the same types', () => {
    const v = { a: [1, { b: new Date(7) }], m: new Map([['k', { x: 1 }]]), s: new Set([1]), buf: Buffer.from('hi'), u8: new Uint8Array([9]), big: 10n }
    const c = clonePlain(v) as typeof v
    expect(c).toStrictEqual(v)
    expect(c).not.toBe(v)
    expect(c.a[1]).not.toBe(v.a[1])
    expect((c.a[1] as { b: Date }).b).not.toBe((v.a[1] as { b: Date }).b)
    expect(c.m.get('k')).not.toBe(v.m.get('k'))
    expect(c.buf).toBeInstanceOf(Buffer)
    expect(c.u8).toBeInstanceOf(Uint8Array)
    c.buf[0] = 0
    expect(v.buf.toString()).toBe('hi')
  })

  it('stays within its entry bound', () => {
    const m = new DecodeMemo()
    for (let pass = 0; pass < 2; pass++) for (let i = 0; i < 5000; i++) m.remember(`k${i}`, Buffer.from(`v${i}`), env, i)
    expect(m.find('k0', Buffer.from('v0'))).toBeUndefined()
    expect(m.find('k4999', Buffer.from('v4999'))?.value).toBe(4999)
  })
})

describe('DecodeMemo: stamps, namespaces, shared values', () => {
  it('keeps the L1 stamp it was given and indexes entries by namespace and key', () => {
    const m = new DecodeMemo()
    const stamp = new RecordStamp()
    Object.assign(stamp, { slot: 7, seq: 4, ref: 64, len: 3, deadline: 0 })
    const raw = Buffer.from('abc')
    m.remember('ns:k', raw, env, { a: 1 }, stamp, false, 'ns')
    const kept = m.remember('ns:k', raw, env, { a: 1 }, stamp, false, 'ns') as Memo
    expect(kept.stamp).toMatchObject({ slot: 7, seq: 4, ref: 64, len: 3, deadline: 0 })
    expect(kept.stamp).not.toBe(stamp) // a copy: the table's stamp changes on its next read
    expect(m.index('ns').get('k')).toBe(kept)
    expect(kept.key).toBe('ns:k')
    expect(m.index('other').get('k')).toBeUndefined()
    // Each copy is a new object of the same content.
    const a = kept.copy()
    expect(a).toEqual({ a: 1 })
    expect(a).not.toBe(kept.copy())
  })

  it('forgets the index entry with the memo entry', () => {
    const m = new DecodeMemo()
    for (let pass = 0; pass < 2; pass++) for (let i = 0; i < 5000; i++) m.remember(`ns:k${i}`, Buffer.from(`v${i}`), env, i, undefined, false, 'ns')
    expect(m.index('ns').get('k0')).toBeUndefined()
    expect(m.index('ns').size).toBeLessThanOrEqual(4096)
    expect(m.index('ns').get('k4999')?.value).toBe(4999)
  })

  it('with share: keeps a JSON-like value at its first decode, deep-frozen, and hands out that one', () => {
    const m = new DecodeMemo()
    const v = { a: [1, { b: 'x' }] }
    const kept = m.remember('ns:s', Buffer.from('s'), env, v, undefined, true, 'ns') as Memo
    expect(kept.shared).toBe(true)
    expect(kept.copy()).toBe(v)
    expect(Object.isFrozen(v) && Object.isFrozen(v.a) && Object.isFrozen(v.a[1])).toBe(true)
    // Not JSON-like: kept on the second decode, as without share, and copied.
    const d = { d: new Date(1) }
    expect(m.remember('ns:d', Buffer.from('d'), env, d, undefined, true, 'ns')).toBeUndefined()
    const kd = m.remember('ns:d', Buffer.from('d'), env, { d: new Date(1) }, undefined, true, 'ns') as Memo
    expect(kd.shared).toBe(false)
    expect(Object.isFrozen(kd.value)).toBe(false)
    expect(kd.copy()).not.toBe(kd.value)
    expect(kd.copy()).toEqual({ d: new Date(1) })
  })
})
