import { describe, expect, it } from 'vitest'
import { clonePlain, DecodeMemo } from '../../src/codec/decode_memo.js'
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
