import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { redisBackends, uniqueNamespace } from '../helpers/backends.js'

/**
 * Read-through in front of a real PostgreSQL: `getOrSet` with a loader that runs
 * a SELECT, on the standalone Redis and on the 3-master Cluster. The loader
 * counts its calls, so every assertion on "how many queries" is exact.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (database `test`, user `postgres`, trust
 * auth). Without it every test here fails with a message that says so.
 */

const PG_CONFIG = {
  host: '127.0.0.1',
  port: 5432,
  database: 'test',
  user: 'postgres',
  connectionTimeoutMillis: 5_000,
  max: 4,
} as const

const PG_NEEDED =
  `PostgreSQL on ${PG_CONFIG.host}:${PG_CONFIG.port} is needed for this test (database '${PG_CONFIG.database}', user '${PG_CONFIG.user}', trust auth). ` +
  'Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'

/** A row as pg hands it back: numeric → string, timestamptz → Date, jsonb → object. */
interface Product {
  id: number
  name: string
  price: string
  updated_at: Date
  attrs: { color: string; sizes: number[] }
}

const UPDATED_AT = new Date('2024-05-06T07:08:09.123Z')

let pool: pg.Pool | undefined
let pgError: Error | undefined
const tables: string[] = []

beforeAll(async () => {
  const p = new pg.Pool(PG_CONFIG)
  p.on('error', () => {}) // an idle client dropped by the server must not crash the run
  try {
    await p.query('SELECT 1')
    pool = p
  } catch (err) {
    pgError = err instanceof Error ? err : new Error(String(err))
    await p.end().catch(() => {})
  }
})

afterAll(async () => {
  if (!pool) return
  for (const t of tables.splice(0)) await pool.query(`DROP TABLE IF EXISTS ${t}`)
  await pool.end()
})

/** The pool, or a failure that says PostgreSQL is needed (never a skip). */
function db(): pg.Pool {
  if (!pool) throw new Error(`${PG_NEEDED}\nConnecting failed: ${pgError?.message ?? 'unknown error'}`, { cause: pgError })
  return pool
}

/** A fresh uniquely named table with three products; dropped in afterAll. */
async function freshTable(): Promise<string> {
  const table = `nc_products_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  tables.push(table)
  await db().query(
    `CREATE TABLE ${table} (
       id integer PRIMARY KEY,
       name text NOT NULL,
       price numeric(10, 2) NOT NULL,
       updated_at timestamptz NOT NULL,
       attrs jsonb NOT NULL
     )`,
  )
  await db().query(
    `INSERT INTO ${table} (id, name, price, updated_at, attrs) VALUES
       (1, 'Widget', 19.99, $1, '{"color": "red", "sizes": [1, 2, 3]}'),
       (2, 'Gadget', 5.00, $1, '{"color": "blue", "sizes": []}'),
       (3, 'Doohickey', 1234567.89, $1, '{"color": "green", "sizes": [42]}')`,
    [UPDATED_AT],
  )
  return table
}

/** The row as PostgreSQL has it right now, read past the cache. */
async function rowFromPg(table: string, id: number): Promise<Product | undefined> {
  const r = await db().query<Product>(`SELECT id, name, price, updated_at, attrs FROM ${table} WHERE id = $1`, [id])
  return r.rows[0]
}

/** A loader running a real SELECT, counting its calls. */
function productLoader(table: string) {
  const counter = { queries: 0 }
  const load = (id: number) => async (): Promise<Product | undefined> => {
    counter.queries++
    const r = await db().query<Product>(`SELECT id, name, price, updated_at, attrs FROM ${table} WHERE id = $1`, [id])
    return r.rows[0]
  }
  return { counter, load }
}

describe.each(redisBackends)('read-through from PostgreSQL on $name', (backend) => {
  const open: NearCache[] = []
  const make = async (namespace = uniqueNamespace(`pg-${backend.name}`), opts: CacheOptions = {}) => {
    const c = await createCache({ redis: backend.redisOption(), namespace, ...opts })
    open.push(c)
    return c
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
  })

  it('coalesces 50 cold callers into one query, then serves from Redis until the row is deleted', async () => {
    const table = await freshTable()
    const namespace = uniqueNamespace(`pg-${backend.name}`)
    const cache = await make(namespace)
    const { counter, load } = productLoader(table)
    const expected = await rowFromPg(table, 1)
    expect(expected).toBeDefined()

    const cold = await Promise.all(Array.from({ length: 50 }, () => cache.getOrSet('product:1', load(1))))
    expect(counter.queries).toBe(1)
    for (const row of cold) expect(row).toStrictEqual(expected)
    expect(cold[0]?.price).toBe('19.99')
    expect(cold[0]?.updated_at).toBeInstanceOf(Date)

    const warm = await Promise.all(Array.from({ length: 50 }, () => cache.getOrSet('product:1', load(1))))
    expect(counter.queries).toBe(1)
    for (const row of warm) expect(row).toStrictEqual(expected)

    // It is Redis that holds it: another cache (another process, say; no L1 of its own) on the namespace needs no query.
    const other = await make(namespace, { l1: false })
    expect(await other.getOrSet('product:1', load(1))).toStrictEqual(expected)
    expect(await other.get('product:1')).toStrictEqual(expected)
    expect(counter.queries).toBe(1)

    // The source changes: the cache keeps answering the old row until told.
    await db().query(`UPDATE ${table} SET name = 'Widget v2', price = price + 1, updated_at = $1 WHERE id = 1`, [new Date('2025-01-02T03:04:05.678Z')])
    const stale = await cache.getOrSet('product:1', load(1))
    expect(stale?.name).toBe('Widget')
    expect(counter.queries).toBe(1)

    expect(await cache.delete('product:1')).toBe(true)
    const fresh = await cache.getOrSet('product:1', load(1))
    expect(counter.queries).toBe(2)
    expect(fresh).toStrictEqual(await rowFromPg(table, 1))
    expect(fresh).toMatchObject({ name: 'Widget v2', price: '20.99' })
    expect(fresh?.updated_at).toStrictEqual(new Date('2025-01-02T03:04:05.678Z'))

    // ...and the new row is cached again, for both caches.
    expect(await other.getOrSet('product:1', load(1))).toStrictEqual(fresh)
    expect(await cache.getOrSet('product:1', load(1))).toStrictEqual(fresh)
    expect(counter.queries).toBe(2)
  })

  it('invalidateTags sends the tagged entries back to PostgreSQL', async () => {
    const table = await freshTable()
    const cache = await make()
    const { counter, load } = productLoader(table)
    const tagged = { tags: ['products'] }

    const first = await Promise.all([
      cache.getOrSet('product:1', load(1), tagged),
      cache.getOrSet('product:2', load(2), tagged),
      cache.getOrSet('product:3', load(3)), // untagged
    ])
    expect(counter.queries).toBe(3)
    expect(first).toStrictEqual([await rowFromPg(table, 1), await rowFromPg(table, 2), await rowFromPg(table, 3)])

    await Promise.all([
      cache.getOrSet('product:1', load(1), tagged),
      cache.getOrSet('product:2', load(2), tagged),
      cache.getOrSet('product:3', load(3)),
    ])
    expect(counter.queries).toBe(3)

    await db().query(`UPDATE ${table} SET price = price * 2`)
    await cache.invalidateTags(['products'])
    expect(await cache.get('product:1')).toBeUndefined()
    expect(await cache.has('product:2')).toBe(false)

    const after = await Promise.all([
      cache.getOrSet('product:1', load(1), tagged),
      cache.getOrSet('product:2', load(2), tagged),
      cache.getOrSet('product:3', load(3)),
    ])
    expect(counter.queries).toBe(5) // product:1 and product:2 reloaded; the untagged product:3 was not
    expect(after[0]?.price).toBe('39.98')
    expect(after[1]?.price).toBe('10.00')
    expect(after[2]?.price).toBe('1234567.89') // still the cached, pre-update row

    // The reloaded entries are cached again, under the new tag epoch.
    await Promise.all([cache.getOrSet('product:1', load(1), tagged), cache.getOrSet('product:2', load(2), tagged)])
    expect(counter.queries).toBe(5)
  })

  it('does not cache a missing row: every call queries until the row exists', async () => {
    const table = await freshTable()
    const cache = await make()
    const { counter, load } = productLoader(table)

    for (let i = 1; i <= 3; i++) {
      expect(await cache.getOrSet('product:99', load(99))).toBeUndefined()
      expect(counter.queries).toBe(i)
    }
    expect(await cache.has('product:99')).toBe(false)

    // Concurrent callers still share the one lookup, and all get undefined.
    const many = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('product:99', load(99))))
    expect(many.every((r) => r === undefined)).toBe(true)
    expect(counter.queries).toBe(4)

    await db().query(`INSERT INTO ${table} (id, name, price, updated_at, attrs) VALUES (99, 'Late', 0.5, $1, '{"color": "none", "sizes": []}')`, [UPDATED_AT])
    const row = await cache.getOrSet('product:99', load(99))
    expect(counter.queries).toBe(5)
    expect(row).toStrictEqual(await rowFromPg(table, 99))
    expect(row?.price).toBe('0.50')
    expect(await cache.getOrSet('product:99', load(99))).toStrictEqual(row)
    expect(counter.queries).toBe(5)
  })

  it('hands out independent copies that keep pg types (numeric as string, timestamptz as Date)', async () => {
    const table = await freshTable()
    const cache = await make()
    const { counter, load } = productLoader(table)
    const expected = (await rowFromPg(table, 1)) as Product
    expect(typeof expected.price).toBe('string')
    expect(expected.updated_at).toBeInstanceOf(Date)

    // Concurrent callers each get their own object.
    const cold = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSet('product:1', load(1))))
    expect(counter.queries).toBe(1)
    expect(new Set(cold).size).toBe(10)
    expect(new Set(cold.map((r) => r?.attrs)).size).toBe(10)
    expect(new Set(cold.map((r) => r?.updated_at)).size).toBe(10)

    // Mutating what came back (including the loader's own row) changes nothing stored.
    for (const r of cold) {
      if (!r) continue
      r.name = 'mutated'
      r.attrs.color = 'mutated'
      r.attrs.sizes.push(999)
      r.updated_at.setTime(0)
    }
    const a = (await cache.getOrSet('product:1', load(1))) as Product
    expect(counter.queries).toBe(1)
    expect(a).toStrictEqual(expected)

    a.price = '0.00'
    a.attrs.sizes.length = 0
    a.updated_at.setUTCFullYear(1999)
    const b = (await cache.getOrSet('product:1', load(1))) as Product
    const c = (await cache.get<Product>('product:1')) as Product
    expect(b).toStrictEqual(expected)
    expect(c).toStrictEqual(expected)
    expect(b).not.toBe(c)
    expect(counter.queries).toBe(1)

    // The types pg produced survive the trip through Redis.
    expect(typeof b.price).toBe('string')
    expect(b.price).toBe('19.99')
    expect(typeof b.id).toBe('number')
    expect(b.updated_at).toBeInstanceOf(Date)
    expect(b.updated_at.getTime()).toBe(UPDATED_AT.getTime())
    expect(b.updated_at.getTime()).toBe(expected.updated_at.getTime())
    expect(b.attrs).toStrictEqual({ color: 'red', sizes: [1, 2, 3] })
  })
})
