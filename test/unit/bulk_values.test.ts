import { describe, expect, it } from 'vitest'
import { bulkValues } from '../../src/l2/key_routing.js'

/** Replies to reads are hostile until checked: exactly n values, each bytes or nil. */
describe('bulkValues', () => {
  const a = Buffer.from('a')
  it('accepts exactly n values of bytes or nil', () => {
    expect(bulkValues([a, null], 2)).toEqual([a, null])
    expect(bulkValues([], 0)).toEqual([])
  })
  it.each([
    ['too few', [a], 2],
    ['too many', [a, null, a], 2],
    ['not an array', a, 1],
    ['nil', null, 1],
    ['a string element', ['a'], 1],
    ['a number element', [1], 1],
    ['a nested array', [[a]], 1],
    ['undefined element', [undefined], 1],
    ['an error element', [new Error('x')], 1],
  ])('refuses %s', (_, reply, n) => {
    expect(bulkValues(reply, n)).toBeUndefined()
  })
})
