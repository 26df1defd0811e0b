import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError, CacheOptions, NearCache } from '../../src/index.js'
import { encodeDeadLetter } from '../../src/wal/dead_letter.js'
import { EntryCipher } from '../../src/security/entry_cipher.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { CLI_TIMEOUT, nearcache, show, start } from '../helpers/cli_runner.js'
import type { Result } from '../helpers/cli_runner.js'
import { inL1, until } from '../helpers/wait.js'

/**
 * The CLI's encryption keys (--keys-file, NEARCACHE_KEYS) on the real Redis:
 * warm seals what it writes, invalidate signs what it announces, restore refuses
 * entries that do not open; key files are checked and key bytes never printed.
 */
const K1 = { id: 1, key: randomBytes(32).toString('base64') }
const K2 = { id: 2, key: randomBytes(32).toString('base64') }
let dir = ''
let keysFile = ''
let url = ''
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  url = inject('redisUrl')
  dir = await mkdtemp(join(tmpdir(), 'nc-keys-'))
  keysFile = join(dir, 'keys.json')
  await writeFile(keysFile, JSON.stringify([K1]), { mode: 0o600 })
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function cache(namespace: string, extra: CacheOptions = {}): Promise<NearCache> {
  const c = await createCache({ redis: url, namespace, l1: { ttl: Infinity }, ...extra })
  cleanups.push(() => c.close())
  return c
}

function raw(): Redis {
  const r = new Redis(url)
  cleanups.push(() => r.quit())
  return r
}

async function warmFile(entries: { key: string; value: unknown }[]): Promise<string> {
  const f = join(dir, `warm-${randomBytes(4).toString('hex')}.jsonl`)
  await writeFile(f, entries.map((e) => JSON.stringify(e)).join('\n'))
  return f
}

/** Runs the CLI with env NEARCACHE_KEYS set (the runner passes this process's environment on). */
async function withEnvKeys(value: string, args: string[]): Promise<Result> {
  process.env.NEARCACHE_KEYS = value
  try {
    return await start(args).done
  } finally {
    delete process.env.NEARCACHE_KEYS
  }
}

function noSecrets(r: Result): void {
  for (const k of [K1.key, K2.key]) expect(r.stdout + r.stderr).not.toContain(k)
}

describe('CLI keys', { timeout: 4 * CLI_TIMEOUT }, () => {
  it('warm with keys seals what it writes: a cache with the same keys reads it; without keys it is plaintext, a miss and E_CORRUPT_ENTRY there', async () => {
    const ns = uniqueNamespace('warmk')
    const from = await warmFile([{ key: 'a', value: { role: 'user' } }, { key: 'b', value: 42 }])
    const r = await nearcache(['warm', '--redis', url, '--namespace', ns, '--from', from, '--keys-file', keysFile, '--json'])
    expect(r.code, show(r)).toBe(0)
    noSecrets(r)
    const stored = await raw().getBuffer(`${ns}:a`)
    expect(EntryCipher.keyIdOf(stored as Buffer)).toBe(1)
    const reader = await cache(ns, { encryption: { keys: [K2, K1] } })
    expect([await reader.get('a'), await reader.get('b')]).toEqual([{ role: 'user' }, 42])

    const plainNs = uniqueNamespace('warmp')
    const r2 = await nearcache(['warm', '--redis', url, '--namespace', plainNs, '--from', from])
    expect(r2.code, show(r2)).toBe(0)
    const strict = await cache(plainNs, { encryption: { keys: [K1] } })
    const errors: CacheError[] = []
    strict.on('error', (e) => errors.push(e as CacheError))
    expect(await strict.get('a')).toBeUndefined()
    await until('E_CORRUPT_ENTRY', () => errors.some((e) => e.code === 'E_CORRUPT_ENTRY'))
  })

  it("invalidate with keys drops another process's L1 copy (signed); without keys it does not (refused, counted)", async () => {
    const ns = uniqueNamespace('invk')
    const a = await cache(ns, { encryption: { keys: [K1] } })
    await a.set('k', 1)
    await a.set('j', 1)
    expect(await inL1(a, 'k')).toBe(true)
    expect(await inL1(a, 'j')).toBe(true)

    const unsigned = await nearcache(['invalidate', '--redis', url, '--namespace', ns, '--key', 'k'])
    expect(unsigned.code, show(unsigned)).toBe(0)
    await until('the unsigned announcement to be refused', () => a.stats().process.invalidationsRejected >= 1)
    expect(await inL1(a, 'k')).toBe(true)

    const signed = await withEnvKeys(`# the fleet's key\n1:${K1.key}\n`, ['invalidate', '--redis', url, '--namespace', ns, '--key', 'j'])
    expect(signed.code, show(signed)).toBe(0)
    noSecrets(signed)
    await until("a's copy of j to go", async () => !(await inL1(a, 'j')))
    expect(a.stats().process.invalidationsRejected).toBe(1)
  })

  it("dead-letter replay with keys announces signed (another process's L1 copy goes); without keys the announcement is refused", async () => {
    const ns = uniqueNamespace('dlk')
    const a = await cache(ns, { encryption: { keys: [K1] } })
    await a.set('k', 1)
    expect(await inL1(a, 'k')).toBe(true)
    // A dead letter of k holding its stored (sealed) bytes, as write-behind would have left it.
    const bytes = (await raw().getBuffer(`${ns}:k`)) as Buffer
    expect(EntryCipher.keyIdOf(bytes)).toBe(1)
    const wal = await mkdtemp(join(dir, 'wal-'))
    const letter = () => writeFile(join(wal, 'dead-letter.jsonl'), `${encodeDeadLetter({ seq: 1, key: `${ns}:k`, bytes, px: undefined, time: Date.now(), at: Date.now(), reason: 'rejected', detail: 'test' })}\n`, { mode: 0o600 })

    await letter()
    const unsigned = await nearcache(['dead-letter', 'replay', '--dir', wal, '--redis', url, '--namespace', ns])
    expect(unsigned.code, show(unsigned)).toBe(0)
    await until('the unsigned announcement to be refused', () => a.stats().process.invalidationsRejected >= 1)
    expect(await inL1(a, 'k')).toBe(true)

    await letter()
    const signed = await nearcache(['dead-letter', 'replay', '--dir', wal, '--redis', url, '--namespace', ns, '--keys-file', keysFile])
    expect(signed.code, show(signed)).toBe(0)
    noSecrets(signed)
    await until("a's copy of k to go", async () => !(await inL1(a, 'k')))
    expect(a.stats().process.invalidationsRejected).toBe(1)
    expect(await a.get('k')).toBe(1)
  })

  it('refuses key files others can read, symlinks, bad contents; never prints key bytes', async () => {
    const loose = join(dir, 'loose.json')
    await writeFile(loose, JSON.stringify([K1]), { mode: 0o600 })
    await chmod(loose, 0o644)
    const link = join(dir, 'link.json')
    await symlink(keysFile, link)
    const bad = join(dir, 'bad.json')
    // The key where the id goes: the message must not quote it.
    await writeFile(bad, JSON.stringify([{ id: K2.key, key: 1 }]), { mode: 0o600 })
    const short = join(dir, 'short.json')
    await writeFile(short, `[{"id":1,"key":"${K2.key.slice(0, 20)}"}`, { mode: 0o600 })
    const big = join(dir, 'big.json')
    await writeFile(big, ' '.repeat(65 * 1024), { mode: 0o600 })
    const ns = uniqueNamespace('refuse')
    const cases: [string, RegExp][] = [
      [loose, /mode is 0644.*chmod 600/],
      [link, /symbolic link/],
      [bad, /key 0 must be \{"id"/],
      [short, /not valid JSON/],
      [big, /over 65536/],
      [dir, /not a regular file/],
    ]
    for (const [file, why] of cases) {
      const r = await nearcache(['invalidate', '--redis', url, '--namespace', ns, '--key', 'k', '--keys-file', file])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr).toMatch(why)
      noSecrets(r)
    }
    const env = await withEnvKeys(`1:${K1.key.slice(0, 40)}`, ['invalidate', '--redis', url, '--namespace', ns, '--key', 'k'])
    expect(env.code, show(env)).toBe(1)
    expect(env.stderr).toMatch(/NEARCACHE_KEYS.*32 bytes/)
    noSecrets(env)
  })

  it('restore with keys refuses entries that do not open (counted, reported) and re-seals entries restored --into another namespace', async () => {
    const ns = uniqueNamespace('rsk')
    const writer = await cache(ns, { encryption: { keys: [K1] }, l1: false })
    await writer.set('good', { v: 1 }, { ttl: 600_000 })
    await writer.set('tagged', 'x', { tags: ['t'] })
    // Planted behind the cache's back: a plaintext entry (another cache without keys) and a value copied to another key.
    const plain = await cache(ns, { l1: false })
    await plain.set('planted', { role: 'admin' })
    const r = raw()
    await r.set(`${ns}:copied`, (await r.getBuffer(`${ns}:good`)) as Buffer)
    const backupFile = join(dir, `${ns}.backup`)
    const b = await nearcache(['backup', '--redis', url, '--namespace', ns, '--out', backupFile])
    expect(b.code, show(b)).toBe(0)

    const into = uniqueNamespace('rsk-into')
    const res = await nearcache(['restore', '--redis', url, '--namespace', ns, '--into', into, '--from', backupFile, '--keys-file', keysFile, '--json'])
    expect(res.code, show(res)).toBe(1)
    noSecrets(res)
    const out = JSON.parse(res.stdout) as { restored: number; unopened: number; errors: { line: number; error: string }[] }
    expect(out.unopened, res.stdout).toBe(2)
    expect(out.errors.map((e) => e.error).join('\n')).toMatch(/planted.*plaintext/)
    expect(out.errors.map((e) => e.error).join('\n')).toMatch(/copied.*failed authentication/)
    const reader = await cache(into, { encryption: { keys: [K1] } })
    expect([await reader.get('good'), await reader.get('tagged'), await reader.get('planted'), await reader.get('copied')]).toEqual([{ v: 1 }, 'x', undefined, undefined])
    expect(await r.exists(`${into}:planted`, `${into}:copied`)).toBe(0)
    const pttl = await r.pttl(`${into}:good`)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(600_000)

    // Without keys, --into cannot move encrypted entries (they would never open at their new key).
    const blind = await nearcache(['restore', '--redis', url, '--namespace', ns, '--into', uniqueNamespace('rsk-blind'), '--from', backupFile, '--json'])
    expect(blind.code, show(blind)).toBe(1)
    expect(blind.stdout).toMatch(/encrypted, and an encrypted entry only opens at its own key/)
  })
})
