import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import type { Cluster, Redis } from 'ioredis'
import { expect, vi } from 'vitest'
import { createCache, type CacheOptions, type NearCache } from '../../src/index.js'
import type { InvalidationNotice } from '../../src/l2/invalidation_bus.js'
import { failure } from './failure.js'

/**
 * The whole API run as an ACL user holding only `nearcache acl`'s rule of one
 * namespace, on a standalone server or a Cluster (acl.test.ts, acl_cluster.test.ts).
 */
export interface AclBackend {
  /** The `redis` option that connects as `user`. */
  redis(user: string, password: string): NonNullable<CacheOptions['redis']>
  /** Default-user clients, one per server (every Cluster node): ACL SETUSER / LOG / DELUSER. */
  nodes: Redis[]
  /** A default-user client that routes (standalone or Cluster): data checks. */
  admin: Redis | Cluster
}

/** Applies the rule with a password on every node, and empties every node's ACL LOG. */
export async function applyRule(b: AclBackend, args: string[], password: string): Promise<void> {
  for (const node of b.nodes) {
    await node.call('ACL', 'SETUSER', ...args, `>${password}`)
    await node.call('ACL', 'LOG', 'RESET')
  }
}

export async function removeUser(b: AclBackend, user: string): Promise<void> {
  for (const node of b.nodes) await node.call('ACL', 'DELUSER', user).catch(() => {})
}

/** Every ACL LOG entry of `user` on every node, as "reason object cmd" lines. */
export async function refusals(b: AclBackend, user: string): Promise<string[]> {
  const out: string[] = []
  for (const node of b.nodes) {
    const log = (await node.call('ACL', 'LOG')) as unknown[][]
    for (const entry of log) {
      const f = new Map<string, unknown>()
      for (let i = 0; i + 1 < entry.length; i += 2) f.set(String(entry[i]), entry[i + 1])
      if (f.get('username') !== user) continue
      const cmd = /cmd=(\S+)/.exec(String(f.get('client-info')))?.[1]
      out.push(`${String(f.get('reason'))} ${String(f.get('object'))} ${cmd ?? ''}`)
    }
  }
  return out
}

const DEADLINE = { timeout: 20_000, interval: 20 }

/** Runs every operation of the API as `user` on `ns`; the rule must let all of it through. */
export async function wholeApi(b: AclBackend, ns: string, user: string, password: string, cleanup: (() => Promise<unknown>)[]): Promise<void> {
  const options: CacheOptions = { redis: b.redis(user, password), namespace: ns, stampedeLock: true }
  const errors: Error[] = []
  const open = async (extra: CacheOptions = {}) => {
    const c = await createCache({ ...options, ...extra })
    c.on('error', (e) => errors.push(e))
    cleanup.push(() => c.close())
    return c
  }
  const a = await open()
  const bc = await open()

  // Reads and writes, single and batched.
  await a.set('k1', { v: 1 }, { tags: ['t1'] })
  await a.setMany([
    { key: 'k2', value: 'two' },
    { key: 'child:k3', value: 3, tags: ['t2'] },
  ])
  expect(await bc.get('k1')).toEqual({ v: 1 })
  expect(await bc.getMany(['k1', 'k2', 'child:k3', 'absent'])).toEqual([{ v: 1 }, 'two', 3, undefined])
  expect(await a.delete('k2')).toBe(true)
  await vi.waitFor(async () => expect(await bc.get('k2')).toBeUndefined(), DEADLINE)
  expect(await a.set('k2', 'nx', { nx: true })).toBe(true)
  expect(await a.set('k2', 'again', { nx: true })).toBe(false)

  // Invalidation: bc holds k1 in its L1; a's change reaches bc over the namespace root's channel.
  expect(await bc.get('k1')).toEqual({ v: 1 })
  expect(bc.stats().l1.hits).toBeGreaterThan(0)
  const received = new Promise<InvalidationNotice>((resolve) =>
    bc.on('invalidation', (n) => {
      if (n.direction === 'received' && n.keys.includes(`${ns}:k1`)) resolve(n)
    }),
  )
  await a.set('k1', { v: 2 })
  await received
  expect(await bc.get('k1')).toEqual({ v: 2 })

  // Tags.
  await a.set('tagged', 'x', { tags: ['t1'] })
  await a.invalidateTags(['t1'])
  await vi.waitFor(async () => expect(await bc.get('tagged')).toBeUndefined(), DEADLINE)
  expect(await a.get('tagged')).toBeUndefined()

  // The stampede lock: two callers, one load.
  let loads = 0
  const loader = async () => {
    loads++
    await new Promise((r) => setTimeout(r, 50))
    return 'loaded'
  }
  expect(await Promise.all([a.getOrSet('gos', loader), bc.getOrSet('gos', loader)])).toEqual(['loaded', 'loaded'])
  expect(loads).toBe(1)
  expect(await b.admin.exists(`${ns}:gos`)).toBe(1)

  // A child namespace, its health, then prefixes and clear.
  const child = a.namespace('sub')
  await child.set('c', 1, { tags: ['ct'] })
  await child.invalidateTags(['ct'])
  const childHealth = await child.health()
  expect(childHealth.l2.pingMs).toBeTypeOf('number')
  await a.setMany(Array.from({ length: 20 }, (_, i) => ({ key: `p:${i}`, value: i })))
  expect(await a.invalidatePrefix('p:')).toBe(20)
  expect(await bc.get('p:3')).toBeUndefined()
  const health = await a.health()
  expect(health.l2.pingMs).toBeTypeOf('number')
  expect(health.l2.errors).toBe(0)
  await a.clear()
  for (const k of ['k1', 'child:k3', 'gos', 'k2']) expect(await b.admin.exists(`${ns}:${k}`)).toBe(0)

  // Write-behind: acknowledged on the local log, then flushed to Redis as the user.
  const dir = await mkdtemp(join(tmpdir(), 'nc-acl-wb-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  const wb = await open({ writeBehind: { dir, flushInterval: '50ms' } })
  await wb.setMany(Array.from({ length: 10 }, (_, i) => ({ key: `wb:${i}`, value: i })))
  await wb.delete('wb:0')
  const stored = async () => (await Promise.all(Array.from({ length: 10 }, (_, i) => b.admin.exists(`${ns}:wb:${i}`)))).join('')
  await vi.waitFor(async () => expect(await stored()).toBe('0111111111'), DEADLINE)
  await wb.close()

  expect(errors.map((e) => e.message)).toEqual([])
  expect(a.stats().l2.errors + bc.stats().l2.errors).toBe(0)
  // Nothing was refused, not even what the library swallows (a lost PUBLISH, ioredis' own commands).
  expect(await refusals(b, user)).toEqual([])
}

/** What an operation on another namespace throws (or the cache reports), for the checks below. */

/** The error is E_L2_ERROR and names one of `named` (a key or channel) with its grant; never the password. */
function expectNamed(err: Error & { code?: string }, named: [string, string][] | string, grant: string, password: string): void {
  const options = typeof named === 'string' ? [[named, grant] as [string, string]] : named
  expect(err.code).toBe('E_L2_ERROR')
  expect(err.message).toContain('NOPERM')
  expect(options.some(([n, g]) => err.message.includes(`${JSON.stringify(n)} (NOPERM`) && err.message.includes(`Grant ${g} with`)), err.message).toBe(true)
  for (const text of [err.message, String(err.stack), inspect(err, { depth: 5 })]) expect(text).not.toContain(password)
}

/**
 * The same user on namespace `other` (whose keys `seed` put there as the default
 * user): every operation fails with E_L2_ERROR naming the key or channel.
 */
export async function otherNamespace(b: AclBackend, other: string, user: string, password: string, cleanup: (() => Promise<unknown>)[]): Promise<void> {
  for (const node of b.nodes) await node.call('ACL', 'LOG', 'RESET')
  await b.admin.set(`${other}:seeded`, 'x')
  await b.admin.set(`__nc|t|${other}|t`, '5')
  const redis = b.redis(user, password)
  const channel = `__nc|inv|${other.split(':')[0]}`
  expectNamed(await failure(createCache({ redis, namespace: other })), channel, `&${channel}`, password)

  const errors: Error[] = []
  const c = await createCache({ redis, namespace: other, invalidation: false, stampedeLock: true })
  c.on('error', (e) => errors.push(e))
  cleanup.push(() => c.close())
  const key = `${other}:seeded`
  const tagKey = `__nc|t|${other}|t`
  const grant = `~${other.split(':')[0]}:*`
  expectNamed(await failure(c.get('seeded')), key, grant, password)
  expectNamed(await failure(c.getMany(['seeded'])), key, grant, password)
  expectNamed(await failure(c.set('seeded', 1)), key, grant, password)
  expectNamed(await failure(c.setMany([{ key: 'seeded', value: 1 }])), key, grant, password)
  expectNamed(await failure(c.delete('seeded')), key, grant, password)
  expectNamed(await failure(c.getOrSet('seeded', async () => 1)), key, grant, password)
  expectNamed(await failure(c.invalidateTags(['t'])), tagKey, `~__nc|t|${other}|*`, password)
  // SCAN finds the other namespace's key names (Redis does not filter SCAN by key
  // patterns); removing them is refused.
  expectNamed(await failure(c.invalidatePrefix('seed')), key, grant, password)
  // clear scans the data and tag-epoch prefixes at once: the first refusal names either.
  expectNamed(await failure(c.clear()), [[key, grant], [tagKey, `~__nc|t|${other}|*`]], '', password)
  expect(await b.admin.get(key)).toBe('x')
  expect(await b.admin.get(`__nc|t|${other}|t`)).toBe('5')
  // health() cannot read the ping key: down, with the refused key named; no round trip measured, the error counted.
  const health = await c.health()
  expect(health.status).toBe('down')
  expect(health.recommendations.join('\n')).toContain(`__nc|ping|${other}`)
  expect(health.recommendations.join('\n')).not.toContain(password)
  expect(health.l2.pingMs).toBeUndefined()
  expect(health.l2.errors).toBeGreaterThan(0)
  for (const e of errors) expect(inspect(e, { depth: 5 })).not.toContain(password)
  // Every refusal is in the ACL LOG under the user's name: keys and the channel of the other namespace only.
  const refused = await refusals(b, user)
  expect(refused.length).toBeGreaterThan(0)
  for (const line of refused) expect(line).toMatch(new RegExp(`^(key (${other}:|__nc\\|t\\|${other}\\||__nc\\|l\\|${other}:|__nc\\|ping\\|${other} )|channel ${channel.replace(/\|/g, '\\|')} )`))
}

/** As the user: SCAN lists key names of every namespace; their values stay unreadable. */
export async function scanLeaksNames(b: AclBackend, asUser: Redis[], other: string): Promise<void> {
  await b.admin.set(`${other}:visible-name`, 'secret-value')
  const names: string[] = []
  for (const node of asUser) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${other}:*`, 'COUNT', 1000)
      cursor = next
      names.push(...keys)
    } while (cursor !== '0')
  }
  expect(names).toContain(`${other}:visible-name`)
  const results = await Promise.allSettled(asUser.map((n) => n.get(`${other}:visible-name`)))
  for (const r of results) expect(r.status === 'rejected' ? String(r.reason) : r.value).toMatch(/NOPERM/)
}
