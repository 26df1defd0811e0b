import pg from 'pg'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError } from '../../src/index.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { startStandalone } from '../helpers/redis_servers.js'

/** Write-through to PostgreSQL with the writer option, and absorbing L2 outages on reads. */
describe('writer (write-through) against PostgreSQL', () => {
  const pool = new pg.Pool({ host: '127.0.0.1', port: 5432, database: 'test', user: 'postgres', max: 2 })
  const table = `nc_wt_${Math.random().toString(36).slice(2, 10)}`
  beforeAll(async () => {
    await pool.query(`CREATE TABLE ${table} (k text PRIMARY KEY, v jsonb NOT NULL)`)
  })
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`)
    await pool.end()
  })

  it('updates the data source before the cache, and leaves the cache alone when the source fails', async () => {
    let failNext = false
    const writer = async (changes: { key: string; value?: unknown; deleted?: boolean }[]) => {
      if (failNext) throw new Error('database refused')
      for (const c of changes) {
        if (c.deleted) await pool.query(`DELETE FROM ${table} WHERE k = $1`, [c.key])
        else await pool.query(`INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, [c.key, JSON.stringify(c.value)])
      }
    }
    const cache = await createCache({ redis: inject('redisUrl'), namespace: uniqueNamespace('wt'), writer })
    try {
      await cache.set('a', { n: 1 })
      await cache.setMany([{ key: 'b', value: { n: 2 } }])
      const rows = await pool.query(`SELECT k, v FROM ${table} ORDER BY k`)
      expect(rows.rows).toEqual([{ k: 'a', v: { n: 1 } }, { k: 'b', v: { n: 2 } }])
      failNext = true
      await expect(cache.set('a', { n: 99 })).rejects.toThrow('database refused')
      expect(await cache.get('a')).toEqual({ n: 1 })
      failNext = false
      expect(await cache.delete('b')).toBe(true)
      expect((await pool.query(`SELECT k FROM ${table}`)).rows).toEqual([{ k: 'a' }])
    } finally {
      await cache.close()
    }
  })
  it('conditional writes (nx, xx, compareAndSet) reach the data source exactly when they land, and a refused one leaves the cache', async () => {
    let refuse = false
    const source = new Map<string, unknown>()
    const seen: string[] = []
    const writer = async (changes: { key: string; value?: unknown; deleted?: boolean }[]) => {
      if (refuse) throw new Error('database refused')
      for (const c of changes) {
        seen.push(c.key)
        if (c.deleted) await pool.query(`DELETE FROM ${table} WHERE k = $1`, [c.key])
        else await pool.query(`INSERT INTO ${table} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, [c.key, JSON.stringify(c.value)])
        source.set(c.key, c.value)
      }
    }
    const row = async (k: string) => (await pool.query(`SELECT v FROM ${table} WHERE k = $1`, [k])).rows[0]?.v
    for (const backend of [inject('redisUrl'), false as const]) {
      const cache = await createCache({ redis: backend, namespace: uniqueNamespace('wtc'), writer })
      const p = backend === false ? 'l1-' : 'l2-'
      try {
        seen.length = 0
        expect(await cache.set(`${p}n`, { v: 1 }, { nx: true })).toBe(true)
        expect(await row(`${p}n`)).toEqual({ v: 1 })
        // The condition fails: neither the cache nor the data source changes.
        expect(await cache.set(`${p}n`, { v: 2 }, { nx: true })).toBe(false)
        expect(await row(`${p}n`)).toEqual({ v: 1 })
        expect(await cache.set(`${p}n`, { v: 3 }, { xx: true })).toBe(true)
        expect(await row(`${p}n`)).toEqual({ v: 3 })
        expect(await cache.set(`${p}missing`, { v: 4 }, { xx: true })).toBe(false)
        expect(await row(`${p}missing`)).toBeUndefined()
        expect(await cache.compareAndSet(`${p}n`, { v: 3 }, { v: 5 })).toBe(true)
        expect(await row(`${p}n`)).toEqual({ v: 5 })
        expect(await cache.compareAndSet(`${p}n`, { v: 3 }, { v: 6 })).toBe(false)
        expect(await row(`${p}n`)).toEqual({ v: 5 })
        expect(seen).toEqual([`${p}n`, `${p}n`, `${p}n`])
        // A writer that refuses a landed conditional write: the call rejects and the cache lets the entry go.
        refuse = true
        await expect(cache.compareAndSet(`${p}n`, { v: 5 }, { v: 7 })).rejects.toThrow('database refused')
        expect(await cache.get(`${p}n`)).toBeUndefined()
        expect(await row(`${p}n`)).toEqual({ v: 5 })
        await expect(cache.set(`${p}m`, { v: 8 }, { nx: true })).rejects.toThrow('database refused')
        expect(await cache.get(`${p}m`)).toBeUndefined()
        refuse = false
      } finally {
        refuse = false
        await cache.close()
      }
    }
  })
})

describe('suppressL2Errors', () => {
  it('turns reads Redis cannot answer into misses and still returns loaded values', { timeout: 30_000 }, async () => {
    const server = await startStandalone()
    try {
      const cache = await createCache({ redis: server.url, namespace: uniqueNamespace('absorb'), commandTimeout: 300, suppressL2Errors: true, l1: false })
      const errors: CacheError[] = []
      cache.on('error', (e) => errors.push(e as CacheError))
      await cache.set('k', 'v')
      server.kill('SIGKILL')
      expect(await cache.get('k')).toBeUndefined()
      expect(await cache.getMany(['k', 'j'])).toEqual([undefined, undefined])
      expect(await cache.has('k')).toBe(false)
      expect(await cache.getOrSet('k', () => 'from the source')).toBe('from the source')
      await expect(cache.set('k', 'w')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' })
      // The absorbed failures are reported (next to the client's own connection errors).
      expect(errors.filter((e) => e.code === 'E_L2_UNAVAILABLE').length).toBeGreaterThanOrEqual(4)
      await cache.close()
    } finally {
      await server.stop()
    }
  })
})
