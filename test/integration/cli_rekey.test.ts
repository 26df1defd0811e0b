import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { EntryCipher } from '../../src/security/entry_cipher.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { CLI_TIMEOUT, nearcache, show, start } from '../helpers/cli_runner.js'

/**
 * `nearcache rekey` end to end, standalone and Cluster: 2,000 entries sealed
 * under k1 are re-sealed under k2 while another cache keeps writing some of the
 * same keys; afterwards every entry opens under k2 alone, and every racing write
 * is the value stored (none lost to the rekey's write-back).
 */
const ENTRIES = 2000
/** Concurrent writer loops, on disjoint keys among the first HOT (the others are only the rekey's). */
const LOOPS = 4
const HOT = 400
const K1 = { id: 11, key: randomBytes(32).toString('base64') }
const K2 = { id: 22, key: randomBytes(32).toString('base64') }
let dir = ''
let keysFile = ''

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nc-rekey-'))
  keysFile = join(dir, 'keys')
  await writeFile(keysFile, `${K2.id}:${K2.key}\n${K1.id}:${K1.key}\n`, { mode: 0o600 })
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const backends = [
  {
    name: 'standalone',
    redis: (): CacheOptions['redis'] => inject('redisUrl'),
    args: () => ['--redis', inject('redisUrl')],
    raw: (): Redis | Cluster => new Redis(inject('redisUrl')),
  },
  {
    name: 'cluster',
    redis: (): CacheOptions['redis'] => ({ cluster: inject('clusterNodes') }),
    args: () => ['--cluster', inject('clusterNodes').map((n) => `${n.host}:${n.port}`).join(',')],
    raw: (): Redis | Cluster => new Cluster(inject('clusterNodes')),
  },
]

describe.each(backends)('rekey ($name)', (b) => {
  it(
    `re-seals ${ENTRIES} entries under the first key while writes race it; none is lost`,
    async () => {
      const ns = uniqueNamespace(`rk-${b.name}`)
      const opened: NearCache[] = []
      const open = async (keys: (typeof K1)[]) => {
        const c = await createCache({ redis: b.redis(), namespace: ns, l1: false, encryption: { keys } })
        opened.push(c)
        return c
      }
      const raw = b.raw()
      try {
        const old = await open([K1])
        const keys = Array.from({ length: ENTRIES }, (_, i) => `e${i}`)
        const expected = new Map<string, unknown>(keys.map((k, i) => [k, { i, v: 'original' }]))
        for (let i = 0; i < ENTRIES; i += 200) await old.setMany(keys.slice(i, i + 200).map((key) => ({ key, value: expected.get(key), ttl: 3_600_000 })))
        expect(EntryCipher.keyIdOf((await raw.getBuffer(`${ns}:e0`)) as Buffer)).toBe(K1.id)

        // The racing writers: a cache already on [k2, k1]. Each loop owns the hot keys of one residue
        // mod LOOPS and awaits each write, so the last value written to a key is the one Redis must hold.
        // (rekey_race.test.ts puts a write exactly between the rekey's read and write-back.)
        const writer = await open([K2, K1])
        let running = true
        let racing = 0
        const loop = async (offset: number) => {
          for (let n = 0; running; n++) {
            const key = keys[offset + LOOPS * ((n * 7919) % (HOT / LOOPS))] as string
            const value = { i: key, v: `racing-${offset}-${n}` }
            await writer.set(key, value, { ttl: 3_600_000 })
            expected.set(key, value)
            racing++
          }
        }
        const loops = Array.from({ length: LOOPS }, (_, o) => loop(o))
        const run = start(['rekey', ...b.args(), '--namespace', ns, '--keys-file', keysFile, '--concurrency', '64', '--json'])
        const r = await run.done.finally(() => {
          running = false
        })
        await Promise.all(loops)
        expect(r.code, show(r)).toBe(0)
        expect(racing).toBeGreaterThan(0)
        const summary = JSON.parse(r.stdout) as Record<string, number>
        expect(summary, r.stdout).toMatchObject({ keyId: K2.id, unreadable: 0, skipped: 0, leftUnderOlderKeys: 0, plaintext: 0 })
        expect(summary.scanned).toBeGreaterThanOrEqual(ENTRIES)
        expect(summary.rekeyed).toBeGreaterThanOrEqual(ENTRIES - HOT)
        expect(r.stdout + r.stderr).not.toContain(K1.key)
        expect(r.stdout + r.stderr).not.toContain(K2.key)

        // Every entry opens under k2 alone and holds the last value written.
        const reader = await open([K2])
        const got: unknown[] = []
        for (let i = 0; i < ENTRIES; i += 200) got.push(...(await reader.getMany(keys.slice(i, i + 200))))
        expect(got).toEqual(keys.map((k) => expected.get(k)))
        const ids = await Promise.all(keys.map(async (k) => EntryCipher.keyIdOf((await raw.getBuffer(`${ns}:${k}`)) as Buffer)))
        expect(ids.filter((id) => id !== K2.id)).toEqual([])
        // The TTL survived the write-back (KEEPTTL).
        const ttl = await raw.pttl(`${ns}:e${ENTRIES - 1}`)
        expect(ttl).toBeGreaterThan(0)

        // A second run finds nothing to do.
        const again = await nearcache(['rekey', ...b.args(), '--namespace', ns, '--keys-file', keysFile, '--json'])
        expect(again.code, show(again)).toBe(0)
        expect(JSON.parse(again.stdout)).toMatchObject({ rekeyed: 0, raced: 0, leftUnderOlderKeys: 0 })
      } finally {
        for (const c of opened) await c.close()
        await raw.quit()
      }
    },
    4 * CLI_TIMEOUT,
  )
})

describe('rekey refusals', () => {
  it('needs keys; entries that do not open are reported and counted, never changed', async () => {
    const url = inject('redisUrl')
    const none = await nearcache(['rekey', '--redis', url, '--namespace', uniqueNamespace('rk')])
    expect(none.code, show(none)).toBe(1)
    expect(none.stderr).toMatch(/rekey needs the keys/)

    const ns = uniqueNamespace('rk-bad')
    const foreign = await createCache({ redis: url, namespace: ns, l1: false, encryption: { keys: [{ id: K1.id, key: randomBytes(32) }] } })
    await foreign.set('alien', 1)
    await foreign.close()
    const raw = new Redis(url)
    try {
      const before = await raw.getBuffer(`${ns}:alien`)
      const r = await nearcache(['rekey', '--redis', url, '--namespace', ns, '--keys-file', keysFile, '--json'])
      expect(r.code, show(r)).toBe(1)
      expect(JSON.parse(r.stdout)).toMatchObject({ unreadable: 1, leftUnderOlderKeys: 1, rekeyed: 0 })
      expect(r.stderr).toMatch(/alien.*failed authentication/)
      expect(await raw.getBuffer(`${ns}:alien`)).toEqual(before)
    } finally {
      await raw.quit()
    }
  }, 2 * CLI_TIMEOUT)
})
