import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { CacheError, createCache, DeadLetterError, WalCorruptionError } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { WriteAheadLog } from '../../src/wal/wal.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { nearcache, show } from '../helpers/cli_runner.js'
import { startStandalone } from '../helpers/redis_servers.js'

/**
 * Write-behind records Redis refuses for good, records of another namespace and a
 * damaged log, through createCache against real Redis servers (issue 10, part 3).
 */
const cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {})
})
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nc-wbdl-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}
function rawClient(url: string): Redis {
  const r = new Redis(url)
  cleanup.push(async () => r.disconnect())
  return r
}
const B = (s: string) => Buffer.from(s)

/** Writes records straight into a log directory, as a crashed process (or anyone able to write there) leaves them. */
async function plantLog(dir: string, records: { key: string; value: string; px?: number }[][]): Promise<void> {
  const wal = await WriteAheadLog.open(dir, { fsync: 'batch' })
  for (const r of records) await wal.append(r.map((w) => ({ key: w.key, bytes: B(w.value), px: w.px })))
  await wal.close()
}

async function deadLetterLines(dir: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(dir, 'dead-letter.jsonl'), 'utf8').catch(() => '')
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** The next 'error' event matching `match` (listens from now on). */
function nextError(cache: NearCache, match: (e: Error) => boolean, ms = 30_000): Promise<Error> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching error event')), ms)
    const on = (e: Error) => {
      if (!match(e)) return
      clearTimeout(timer)
      cache.off('error', on)
      resolve(e)
    }
    cache.on('error', on)
  })
}

describe('write-behind dead letters', () => {
  it('a replayed record Redis refuses for good is dead-lettered: createCache resolves, the writes around it land, close finishes, the next start does not replay it', { timeout: 60_000 }, async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('dl')
    const raw = rawClient(inject('redisUrl'))
    cleanup.push(() => raw.del(`${namespace}:before`, `${namespace}:sibling`, `${namespace}:after`, `${namespace}:poison`))
    await plantLog(dir, [
      [{ key: `${namespace}:before`, value: 'b' }],
      [{ key: `${namespace}:poison`, value: 'p', px: 1e20 }, { key: `${namespace}:sibling`, value: 's', px: 600_000 }],
      [{ key: `${namespace}:after`, value: 'a' }],
    ])
    // (Before the fix, createCache never resolved here: the record was retried forever.)
    const cache = await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir } })
    // Attached after createCache resolved, and still told everything that happened during it.
    const early: Error[] = []
    cache.on('error', (e) => early.push(e))
    await nextError(cache, (e) => e instanceof DeadLetterError)
    expect(await raw.mget(`${namespace}:before`, `${namespace}:sibling`, `${namespace}:after`, `${namespace}:poison`)).toEqual(['b', 's', 'a', null])
    const dead = early.filter((e): e is DeadLetterError => e instanceof DeadLetterError)
    expect(dead).toHaveLength(1)
    expect(dead[0]).toBeInstanceOf(CacheError)
    expect(dead[0]?.code).toBe('E_L2_ERROR')
    expect(dead[0]?.keys).toEqual([`${namespace}:poison`])
    expect(dead[0]?.kept).toBe(1)
    expect(dead[0]?.message).toMatch(/after 5 attempts/)
    expect(dead[0]?.message).toContain('dead-letter.jsonl')
    // Bounded: 5 attempts (the batch, then the write alone 4 times), each reported.
    expect(early.filter((e) => !(e instanceof DeadLetterError) && (e as CacheError).code === 'E_L2_ERROR')).toHaveLength(5)

    const lines = await deadLetterLines(dir)
    expect(lines.map((l) => [l.key, l.reason, l.px, Buffer.from(l.bytes as string, 'base64').toString()])).toEqual([[`${namespace}:poison`, 'rejected', 1e20, 'p']])
    const size = (await stat(join(dir, 'dead-letter.jsonl'))).size
    expect(cache.stats().process.deadLetters).toBe(1)
    expect(cache.stats().process.deadLetterBytes).toBe(size)
    expect(cache.metrics()).toContain('nearcache_write_behind_dead_letters_total 1\n')
    await cache.close()

    const again = await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir } })
    expect(again.stats().process.deadLetters).toBe(0)
    expect(again.stats().process.deadLetterBytes).toBe(size)
    await again.close()
    expect(await deadLetterLines(dir)).toHaveLength(1)
  })

  it('replay writes only keys of the cache namespace; the others go to the dead-letter file with an E_CORRUPT_ENTRY error', { timeout: 30_000 }, async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('dlns')
    const raw = rawClient(inject('redisUrl'))
    const foreign = [`other:${namespace}`, `${namespace}x:k`, `__nc|t|other|tag`, 'nc:k']
    const mine = [`${namespace}:k`, `${namespace}:child:k`, `__nc|t|${namespace}|tag`, `__nc|t|${namespace}:child|tag`]
    cleanup.push(() => raw.del(...mine, ...foreign))
    await plantLog(dir, [[...mine, ...foreign].map((key) => ({ key, value: key }))])
    const cache = await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir } })
    const reported = nextError(cache, (e) => e instanceof DeadLetterError, 5000).catch(() => undefined)
    expect(await raw.mget(...mine)).toEqual(mine)
    expect(await raw.mget(...foreign)).toEqual(foreign.map(() => null))
    const dead = (await reported) as DeadLetterError
    expect([dead?.code, dead?.keys]).toEqual(['E_CORRUPT_ENTRY', foreign])
    expect((await deadLetterLines(dir)).map((l) => [l.key, l.reason])).toEqual(foreign.map((k) => [k, 'namespace']))
    expect(cache.stats().process.deadLetters).toBe(4)
    await cache.close()
    // Acknowledged: not dead-lettered twice.
    await (await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir } })).close()
    expect(await deadLetterLines(dir)).toHaveLength(4)
  })

  it('damage found when the log opens is counted, passed to onError during createCache, and emitted after it resolves', { timeout: 30_000 }, async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('dlc')
    const raw = rawClient(inject('redisUrl'))
    cleanup.push(() => raw.del(`${namespace}:k1`, `${namespace}:k2`, `${namespace}:k3`))
    await plantLog(dir, [1, 2, 3].map((i) => [{ key: `${namespace}:k${i}`, value: `v${i}` }]))
    const seg = join(dir, 'wal-0000000000000001.log')
    const buf = await readFile(seg)
    const second = 8 + buf.readUInt32LE(0)
    buf.writeUInt8(buf.readUInt8(second + 30) ^ 0x10, second + 30) // inside record 2: damage, not a torn tail
    await (await import('node:fs/promises')).writeFile(seg, buf)

    const early: Error[] = []
    const cache = await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir }, onError: (e) => early.push(e) })
    const duringCreate = [...early]
    const emitted = nextError(cache, (e) => e instanceof WalCorruptionError)
    expect(duringCreate).toHaveLength(1)
    const c = duringCreate[0] as WalCorruptionError
    expect(c).toBeInstanceOf(WalCorruptionError)
    expect(c).toBeInstanceOf(CacheError)
    expect(c.code).toBe('E_WAL_CORRUPT')
    expect(c.lostSeqs).toEqual({ from: 2, to: 3 })
    expect(await emitted).toBe(c)
    expect(early).toHaveLength(1) // onError saw it once, not again as a listener
    expect(cache.stats().process.walCorruptions).toBe(1)
    expect(cache.metrics()).toContain('nearcache_write_behind_corrupt_records_total 1\n')
    expect(await raw.get(`${namespace}:k1`)).toBe('v1')
    await cache.close()
  })

  it('without onError or a listener, damage found at open still surfaces (as a process warning)', { timeout: 30_000 }, async () => {
    const dir = await tempDir()
    const namespace = uniqueNamespace('dlw')
    await plantLog(dir, [1, 2].map((i) => [{ key: `${namespace}:k${i}`, value: `v${i}` }]))
    const seg = join(dir, 'wal-0000000000000001.log')
    const buf = await readFile(seg)
    buf.writeUInt8(buf.readUInt8(30) ^ 0x10, 30) // record 1 of 2
    await (await import('node:fs/promises')).writeFile(seg, buf)
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve))
    const cache = await createCache({ redis: inject('redisUrl'), namespace, l1: false, writeBehind: { dir } })
    expect(await warned).toBeInstanceOf(WalCorruptionError)
    expect(cache.stats().process.walCorruptions).toBe(1)
    await cache.close()
  })

  it('OOM that persists: the write is dead-lettered; `dead-letter show` lists it with its key escaped; `dead-letter replay` lands it once Redis has room', { timeout: 120_000 }, async () => {
    const server = await startStandalone({ args: ['--maxmemory-policy', 'noeviction'] })
    cleanup.push(() => server.stop())
    const dir = await tempDir()
    const namespace = uniqueNamespace('dloom')
    const raw = rawClient(server.url)
    const cache = await createCache({ redis: server.url, namespace, l1: false, writeBehind: { dir, flushInterval: 1 } })
    await raw.config('SET', 'maxmemory', '1') // every write is over the limit
    const key = 'line\nbreak\u001b[31m'
    const dead = nextError(cache, (e) => e instanceof DeadLetterError)
    await cache.set(key, { v: 1 }) // acknowledged by the log
    const err = (await dead) as DeadLetterError
    expect(err.message).toMatch(/OOM/)
    expect(err.message).toContain('line\\u000abreak\\u001b[31m') // escaped in the message too
    expect(await raw.exists(`${namespace}:${key}`)).toBe(0)
    await cache.close() // finishes: nothing left queued

    const shown = await nearcache(['dead-letter', 'show', '--dir', dir])
    expect(shown.code, show(shown)).toBe(0)
    expect(shown.stdout).toContain(`${namespace}:line\\u000abreak\\u001b[31m`)
    expect(shown.stdout).not.toContain('\u001b')
    expect(shown.stdout).toMatch(/rejected/)
    expect(shown.stdout).toMatch(/OOM/)
    const json = await nearcache(['dead-letter', 'show', '--dir', dir, '--json', '--namespace', namespace])
    expect(JSON.parse(json.stdout).map((d: { key: string; reason: string }) => [d.key, d.reason])).toEqual([[`${namespace}:${key}`, 'rejected']])

    const noNs = await nearcache(['dead-letter', 'replay', '--dir', dir, '--redis', server.url])
    expect(noNs.code, show(noNs)).toBe(2)
    const stillFull = await nearcache(['dead-letter', 'replay', '--dir', dir, '--namespace', namespace, '--redis', server.url])
    expect(stillFull.code, show(stillFull)).toBe(1)
    expect(stillFull.stderr).toMatch(/still refused: .*OOM/)
    expect(await deadLetterLines(dir)).toHaveLength(1)

    await raw.config('SET', 'maxmemory', '0')
    const replayed = await nearcache(['dead-letter', 'replay', '--dir', dir, '--namespace', namespace, '--redis', server.url])
    expect(replayed.code, show(replayed)).toBe(0)
    expect(replayed.stdout).toMatch(/Replayed 1 write/)
    expect(await deadLetterLines(dir)).toEqual([])
    const back = await createCache({ redis: server.url, namespace, l1: false })
    expect(await back.get(key)).toEqual({ v: 1 })
    await back.close()
  })

  it('Redis down is not permanent: the write stays queued through more failures than maxAttempts and lands when Redis is back', { timeout: 120_000 }, async () => {
    const server = await startStandalone()
    cleanup.push(() => server.stop())
    const dir = await tempDir()
    const namespace = uniqueNamespace('dldown')
    const cache = await createCache({ redis: server.url, namespace, l1: false, commandTimeout: 500, circuitBreaker: false, writeBehind: { dir, flushInterval: 1, maxAttempts: 2 } })
    const failures: CacheError[] = []
    cache.on('error', (e) => failures.push(e as CacheError))
    server.kill('SIGKILL')
    await cache.set('k', 'v')
    const deadline = Date.now() + 60_000
    while (failures.filter((e) => e.code === 'E_L2_UNAVAILABLE').length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    expect(failures.filter((e) => e.code === 'E_L2_UNAVAILABLE').length).toBeGreaterThanOrEqual(4)
    expect(failures.filter((e) => e instanceof DeadLetterError)).toEqual([])
    expect(cache.stats().process.writeBehindDepth).toBe(1)
    await server.restart()
    await cache.close() // drains into the restarted server
    const raw = rawClient(server.url)
    expect(await raw.exists(`${namespace}:k`)).toBe(1)
    expect(await deadLetterLines(dir)).toEqual([])
  })
})
