import { describe, expect, it } from 'vitest'
import { CacheError } from '../../src/errors.js'
import { channelFor, dataKey, LEGACY_CHANNEL, lockKey, pingKey, tagKey } from '../../src/keys.js'
import { wrapRedisError } from '../../src/l2/errors.js'
import { ACL_COMMANDS, aclRule, grantFor } from '../../src/security/acl_rule.js'

/** A Redis glob as the rule uses it: only '*' is special (namespaces hold no other glob character). */
function globMatches(pattern: string, name: string): boolean {
  expect(pattern).not.toMatch(/[?[\]\\]/)
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+^${}()|\\]/g, '\\$&')).join('.*')}$`, 's')
  return re.test(name)
}

/** What a rule lets through: readable/writable key patterns split by their prefix. */
function access(rule: ReturnType<typeof aclRule>, key: string): 'rw' | 'r' | 'none' {
  let best: 'rw' | 'r' | 'none' = 'none'
  for (const p of rule.keys) {
    const readOnly = p.startsWith('%R~')
    const glob = p.slice(readOnly ? 3 : 1)
    expect(p.startsWith('~') || readOnly).toBe(true)
    if (globMatches(glob, key)) best = readOnly && best === 'none' ? 'r' : readOnly ? best : 'rw'
  }
  return best
}

/** Every key nearcache makes for namespace `ns`, with the access it needs. */
function keysOf(ns: string): [string, 'rw' | 'r'][] {
  return [
    [dataKey(ns, 'user:1'), 'rw'],
    [dataKey(ns, '*weird|key[]'), 'rw'],
    [tagKey(ns, 'products'), 'rw'],
    [tagKey(ns, 'a|b:c'), 'rw'],
    [lockKey(dataKey(ns, 'user:1')), 'rw'],
    [pingKey(ns), 'r'],
  ]
}

describe('aclRule', () => {
  it('starts from nothing, turns the user on, holds no password, and allows only the listed commands', () => {
    const rule = aclRule({ namespace: 'shop' })
    expect(rule.user).toBe('nearcache-shop')
    expect(rule.args.slice(0, 4)).toEqual(['nearcache-shop', 'reset', '-@all', 'on'])
    for (const a of rule.args.slice(1)) {
      expect(a).not.toMatch(/^(>|<|#|!|nopass$|allkeys$|allchannels$|allcommands$|\+@|~\*$|&\*$)/)
    }
    const plus = rule.args.filter((a) => a.startsWith('+')).map((a) => a.slice(1))
    expect(plus).toEqual(ACL_COMMANDS.map((c) => c.command))
    expect(plus).not.toContain('keys')
    expect(plus).not.toContain('flushall')
    expect(plus).not.toContain('config')
    expect(rule.args).toEqual([rule.user, 'reset', '-@all', 'on', ...plus.map((c) => `+${c}`), ...rule.keys, ...rule.channels])
  })

  it("grants every key of the namespace and of its children, and none of another namespace's", () => {
    const rule = aclRule({ namespace: 'shop' })
    for (const ns of ['shop', 'shop:users', 'shop:users:eu']) {
      for (const [key, need] of keysOf(ns)) expect([ns, key, access(rule, key)]).toEqual([ns, key, need])
    }
    // Namespaces that share a prefix with 'shop' but are not inside it.
    for (const ns of ['shopping', 'sho', 'shop-eu', 'shop.x', 'other', 'other:shop']) {
      for (const [key] of keysOf(ns)) expect([ns, key, access(rule, key)]).toEqual([ns, key, 'none'])
    }
    const child = aclRule({ namespace: 'shop:users' })
    for (const [key] of keysOf('shop')) expect([key, access(child, key)]).toEqual([key, 'none'])
    for (const [key] of keysOf('shop:orders')) expect([key, access(child, key)]).toEqual([key, 'none'])
    for (const [key, need] of keysOf('shop:users:eu')) expect(access(child, key)).toBe(need)
  })

  it("grants the channel of the namespace's root, the legacy one only on request", () => {
    expect(aclRule({ namespace: 'shop:users' }).channels).toEqual([`&${channelFor('shop:users')}`])
    expect(channelFor('shop:users')).toBe('__nc|inv|shop')
    expect(aclRule({ namespace: 'shop', legacyChannel: true }).channels).toEqual(['&__nc|inv|shop', `&${LEGACY_CHANNEL}`])
  })

  it('adds the rate limiter keys only with rateLimit', () => {
    const plain = aclRule({ namespace: 'shop' })
    const rl = aclRule({ namespace: 'shop', rateLimit: true })
    expect(access(plain, '__nc|rl|shop|alice')).toBe('none')
    expect(access(rl, '__nc|rl|shop|alice')).toBe('rw')
    expect(access(rl, '__nc|rl|shop:users|alice')).toBe('rw')
    expect(access(rl, '__nc|rl|shopping|alice')).toBe('none')
  })

  it('keepPasswords re-applies without reset', () => {
    const rule = aclRule({ namespace: 'shop', user: 'ops', keepPasswords: true })
    expect(rule.args.slice(0, 6)).toEqual(['ops', 'resetkeys', 'resetchannels', 'clearselectors', '-@all', 'on'])
    expect(rule.args).not.toContain('reset')
  })

  it('refuses namespaces createCache refuses, and unsafe user names', () => {
    for (const namespace of ['', 'a b', 'sh*p', 'a|b', 'a{b}', ':a', 'a::b', '__nc', 'x:__NCy', 'a\nb', 'x'.repeat(257)]) {
      expect(() => aclRule({ namespace }), namespace).toThrow(CacheError)
    }
    for (const user of ['', 'a b', 'a>b', '#x', 'a\u0000', 'ü', 'x'.repeat(129)]) {
      const err = (() => {
        try {
          aclRule({ namespace: 'shop', user })
        } catch (e) {
          return e as CacheError
        }
        return undefined
      })()
      expect(err?.code, user).toBe('E_INVALID_OPTION')
    }
    expect(aclRule({ namespace: 'a.b-c_d:E9', user: 'svc:shop@eu-1' }).user).toBe('svc:shop@eu-1')
  })
})

describe('grantFor', () => {
  it("names the pattern that covers one of nearcache's keys or channels", () => {
    expect(grantFor('other:k', 'key')).toBe('~other:*')
    expect(grantFor('other:users:k', 'key')).toBe('~other:*')
    expect(grantFor('__nc|t|other:users|tag|x', 'key')).toBe('~__nc|t|other:users|*')
    expect(grantFor('__nc|l|other:k', 'key')).toBe('~__nc|l|other:*')
    expect(grantFor('__nc|ping|other', 'key')).toBe('%R~__nc|ping|other')
    expect(grantFor('__nc|rl|other|alice', 'key')).toBe('~__nc|rl|other|*')
    expect(grantFor('__nc|inv|other', 'channel')).toBe('&__nc|inv|other')
    expect(grantFor('__nc|inv', 'channel')).toBe('&__nc|inv')
    expect(grantFor('plainkey', 'key')).toBeUndefined()
    expect(grantFor('news', 'channel')).toBeUndefined()
  })
})

/** A reply error as ioredis rejects a command with: the command and its arguments attached. */
function replyError(message: string, name: string, args: unknown[]): Error {
  const e = new Error(message)
  e.name = 'ReplyError'
  Object.assign(e, { command: { name, args } })
  return e
}

describe('NOPERM errors', () => {
  const KEYS_70 = 'NOPERM this user has no permissions to access one of the keys used as arguments'
  const KEYS_72 = 'NOPERM No permissions to access a key'
  const CHANNEL_70 = 'NOPERM this user has no permissions to access one of the channels used as arguments'

  it('name the refused key and the pattern to grant, never the values', () => {
    for (const msg of [KEYS_70, KEYS_72]) {
      const e = wrapRedisError(replyError(msg, 'set', ['other:k', Buffer.from('secret-value'), 'PX', 1000]), 'set')
      expect(e.code).toBe('E_L2_ERROR')
      expect(e.message).toContain('"other:k"')
      expect(e.message).toContain('Grant ~other:* with ACL SETUSER')
      expect(e.message).not.toContain('secret-value')
    }
  })

  it('name only the declared keys of a script call, not its arguments', () => {
    const e = wrapRedisError(replyError(KEYS_70, 'evalsha', ['abc123', '1', '__nc|t|other|t', 'ARG-SECRET']), 'invalidateTags')
    expect(e.message).toContain('"__nc|t|other|t"')
    expect(e.message).toContain('Grant ~__nc|t|other|* with')
    expect(e.message).not.toContain('ARG-SECRET')
    expect(e.message).not.toContain('abc123')
  })

  it('bound a batch to a few names', () => {
    const keys = Array.from({ length: 500 }, (_, i) => `other:${i}`)
    const e = wrapRedisError(replyError(KEYS_70, 'mget', keys), 'mget')
    expect(e.message).toContain('"other:0", "other:1", "other:2" and 497 more (NOPERM')
    expect(e.message).toContain('Grant ~other:* with')
    expect(e.message).not.toContain('"other:3"')
    expect(e.message.length).toBeLessThan(800)
  })

  it('name the refused channel, and the refused command', () => {
    const ch = wrapRedisError(replyError(CHANNEL_70, 'subscribe', ['__nc|inv|other']), 'subscribing to invalidations')
    expect(ch.message).toContain('lacks access to the channel "__nc|inv|other" (NOPERM')
    expect(ch.message).toContain('Grant &__nc|inv|other with')
    const cmd = wrapRedisError(replyError("NOPERM this user has no permissions to run the 'cluster|info' command", 'cluster', ['INFO']), 'health')
    expect(cmd.message).toContain("lacks permission to run the 'cluster|info' command (NOPERM")
    expect(cmd.message).toContain('Grant +cluster|info with')
  })
})

describe('ACL refusals inside a script', () => {
  it('say a script needed a permission, and which commands the scripts run', () => {
    const raw = "ERR The user executing the script can't run this command or subcommand script: ca9c3adf, on @user_script:2."
    const e = wrapRedisError(replyError(raw, 'evalsha', ['ca9c3adf', '1', 'shop:k', 'ARG-SECRET']), 'invalidateTags')
    expect(e.code).toBe('E_L2_ERROR')
    expect(e.message).toContain("lacks a permission that one of nearcache's Lua scripts needs")
    expect(e.message).toContain('+exists')
    expect(e.message).not.toContain('ARG-SECRET')
  })
})
