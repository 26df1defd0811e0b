import { describe, expect, it } from 'vitest'
import {
  channelFor, dataKey, inNamespace, insideRoot, LEGACY_CHANNEL, lockKey, namespacePrefixes, pingKey, reservedSegment, rootNamespace, tagKey,
} from '../../src/keys.js'

/** The names below are on the wire and in users' Redis: a change breaks running deployments. */
describe('key shapes and channels (src/keys.ts)', () => {
  it('spells every name as deployed processes do', () => {
    expect(dataKey('shop:users', 'u1')).toBe('shop:users:u1')
    expect(tagKey('shop:users', 'vip')).toBe('__nc|t|shop:users|vip')
    expect(lockKey('shop:users:u1')).toBe('__nc|l|shop:users:u1')
    expect(pingKey('shop')).toBe('__nc|ping|shop')
    expect(channelFor('shop:users')).toBe('__nc|inv|shop')
    expect(channelFor('shop')).toBe('__nc|inv|shop')
    expect(LEGACY_CHANNEL).toBe('__nc|inv')
    expect(rootNamespace('a:b:c')).toBe('a')
    expect(namespacePrefixes('shop')).toEqual(['shop:', '__nc|t|shop|', '__nc|t|shop:'])
  })

  it('places tag epochs in their namespace and root, and nothing internal in any namespace', () => {
    expect(inNamespace(tagKey('shop:users', 't'), 'shop')).toBe(true)
    expect(inNamespace(tagKey('shopx', 't'), 'shop')).toBe(false)
    expect(inNamespace(lockKey('shop:k'), 'shop')).toBe(false)
    expect(inNamespace(pingKey('shop'), 'shop')).toBe(false)
    expect(insideRoot(tagKey('shop:users', 't'), 'shop')).toBe(true)
    expect(insideRoot(tagKey('shop', 't'), 'shop')).toBe(true)
    expect(insideRoot(tagKey('shopx', 't'), 'shop')).toBe(false)
    expect(insideRoot('__nc|t|shop', 'shop')).toBe(false)
    expect(insideRoot('shop:', 'shop')).toBe(true)
    expect(insideRoot('shop', 'shop')).toBe(false)
    expect(insideRoot(lockKey('shop:k'), 'shop')).toBe(false)
  })

  it('reserves segments starting with __nc in any case', () => {
    for (const s of ['__nc', '__NC', '__nCx', '__nc|t|']) expect(reservedSegment(s)).toBe(true)
    for (const s of ['_nc', 'nc__', 'a__nc', '', '__n']) expect(reservedSegment(s)).toBe(false)
  })
})
