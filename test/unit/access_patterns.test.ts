import { describe, expect, it } from 'vitest'
import { KeyPattern, KeyScope } from '../../src/access/key_pattern.js'

/** The reference: a glob where only '*' is special, as an anchored regex with every other character escaped. */
function reference(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*')}$`)
}

describe('key patterns (globs with *)', () => {
  it('matches as documented', () => {
    const cases: [string, string, boolean][] = [
      ['user:*', 'user:1', true],
      ['user:*', 'user:', true],
      ['user:*', 'users:1', false],
      ['user:*', 'public:user:1', false],
      ['*', 'anything:at:all', true],
      ['*:profile', 'user:9:profile', true],
      ['*:profile', 'user:9:profiles', false],
      ['a*b*c', 'abc', true],
      ['a*b*c', 'aXbYc', true],
      ['a*b*c', 'acb', false],
      ['a*a', 'a', false],
      ['a*a', 'aa', true],
      ['exact', 'exact', true],
      ['exact', 'exactly', false],
      ['user:?', 'user:1', false],
      ['user:?', 'user:?', true],
      ['[ab]', 'a', false],
      ['[ab]', '[ab]', true],
      ['**', '', true],
      ['ab*ab', 'ab', false],
      ['ab*ab', 'abab', true],
    ]
    for (const [p, k, want] of cases) expect(new KeyPattern(p).matches(k), `${p} ~ ${k}`).toBe(want)
  })

  it('agrees with an escaped-regex reference on random patterns and keys', () => {
    let seed = 0x9e3779b9
    const rnd = (n: number) => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) % n
    }
    const keyChars = ['a', 'b', ':', '?', '\\']
    const patternChars = [...keyChars, '*', '*']
    const word = (max: number, chars: string[]) => Array.from({ length: rnd(max + 1) }, () => chars[rnd(chars.length)] as string).join('')
    let matched = 0
    for (let i = 0; i < 20_000; i++) {
      const p = word(6, patternChars) || '*'
      const k = word(6, keyChars)
      const want = reference(p).test(k)
      if (want) matched++
      expect(new KeyPattern(p).matches(k), `${JSON.stringify(p)} ~ ${JSON.stringify(k)}`).toBe(want)
    }
    // Both answers occur, so the comparison tested something.
    expect(matched).toBeGreaterThan(100)
    expect(matched).toBeLessThan(19_900)
  })

  it('a pattern built to make a backtracking matcher explode answers correctly', () => {
    const p = new KeyPattern(`${'a*'.repeat(30)}b`)
    expect(p.matches('a'.repeat(1000))).toBe(false)
    expect(p.matches(`${'a'.repeat(1000)}b`)).toBe(true)
  })

  it('prefix coverage: only a pattern ending in * that the prefix itself matches covers every key under it', () => {
    const s = new KeyScope(['user:*', 'doc:*:draft'])
    expect(s.allowsPrefix('user:')).toBe(true)
    expect(s.allowsPrefix('user:12')).toBe(true)
    expect(s.allowsPrefix('use')).toBe(false)
    expect(s.allowsPrefix('')).toBe(false)
    expect(s.allowsPrefix('doc:1:')).toBe(false)
    expect(new KeyScope(['*']).allowsPrefix('')).toBe(true)
    expect(new KeyScope(['*']).all).toBe(true)
    expect(new KeyScope(['user:*']).all).toBe(false)
  })

  it('a scope allows a batch only when every key matches, and names the first that does not', () => {
    const s = new KeyScope(['user:*', 'public:*'])
    expect(s.firstDenied(['user:1', 'public:x'])).toBeUndefined()
    expect(s.firstDenied(['user:1', 'admin:1', 'secret'])).toBe('admin:1')
  })
})
