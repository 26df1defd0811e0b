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
