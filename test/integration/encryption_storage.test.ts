import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { EntryCipher } from '../../src/security/entry_cipher.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { CLI_TIMEOUT, nearcache, show } from '../helpers/cli_runner.js'
import { ThreadCache } from '../helpers/thread_client.js'

/**
 * Where sealed bytes go (issue 12, part 3): the write-ahead log and `nearcache
 * backup` files hold no plaintext (each checked against the same run without
 * encryption, which must show the value, so the search can fail); a worker thread
 * attached with the cache's handle reads and writes through the owner, and the
 * handle carries no key.
 */
const key = randomBytes(32)
const KEYS = [{ id: 9, key }]
const url = () => inject('redisUrl')
let raw: Redis
let dir: string
const cleanup: (() => Promise<unknown>)[] = []
beforeAll(async () => {
  raw = new Redis(url())
  dir = await mkdtemp(join(tmpdir(), 'nc-enc-'))
})
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})
afterAll(async () => {
  raw.disconnect()
  await rm(dir, { recursive: true, force: true })
})

const cacheOf = async (options: CacheOptions): Promise<NearCache> => {
  const c = await createCache({ redis: url(), ...options })
  cleanup.push(() => c.close())
  return c
}
/** A value that is easy to find in bytes and that compression cannot hide (random). */
const distinctive = () => `distinctive-${randomBytes(16).toString('hex')}`
/**
 * Whether `bytes` show any 10-byte piece of the random part of `secret`: Redis's
 * DUMP compresses with LZF, whose literal runs (at most 32 bytes) split the value,
 * so the whole value may not appear even in a plaintext backup. Random ciphertext
 * holds such a piece with negligible probability.
 */
function showsPiece(bytes: Buffer, secret: string): boolean {
  const hex = secret.slice(secret.indexOf('-') + 1)
  for (let i = 0; i + 10 <= hex.length; i++) if (bytes.includes(Buffer.from(hex.slice(i, i + 10)))) return true
  return false
}
/** Every file under `d`, concatenated. */
async function filesUnder(d: string): Promise<Buffer> {
  const parts: Buffer[] = []
  for (const e of await readdir(d, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) parts.push(await readFile(join(e.parentPath, e.name)))
  }
  return Buffer.concat(parts)
}

describe('write-behind with encryption', () => {
  it.each([true, false])('encryption %s: WAL segments and Redis hold no plaintext when on (and show the value when off)', async (encrypted) => {
    const walDir = join(dir, `wal-${randomBytes(4).toString('hex')}`)
    const ns = uniqueNamespace('encwal')
    const secret = distinctive()
    const c = await cacheOf({ namespace: ns, writeBehind: { dir: walDir, flushInterval: '1h', batchSize: 10_000 }, encryption: encrypted ? { keys: KEYS } : false })
    await c.set('card', { secret })
    expect(await raw.exists(`${ns}:card`)).toBe(0) // still queued: only the WAL has it
    expect(await c.get('card')).toEqual({ secret })
    const wal = await filesUnder(walDir)
    expect(wal.length).toBeGreaterThan(0)
    expect(showsPiece(wal, secret)).toBe(!encrypted)
    await c.close()
    const stored = (await raw.getBuffer(`${ns}:card`)) as Buffer
    expect(showsPiece(stored, secret)).toBe(!encrypted)
    expect(EntryCipher.keyIdOf(stored)).toBe(encrypted ? 9 : undefined)
    const reader = await cacheOf({ namespace: ns, encryption: encrypted ? { keys: KEYS } : false })
    expect(await reader.get('card')).toEqual({ secret })
  })
})

describe('nearcache backup with encryption', { timeout: CLI_TIMEOUT }, () => {
  it.each([true, false])('encryption %s: a backup file holds no plaintext when on (and shows the value when off), and restores readable', async (encrypted) => {
    const ns = uniqueNamespace('encbk')
    const secret = distinctive()
    const c = await cacheOf({ namespace: ns, encryption: encrypted ? { keys: KEYS } : false })
    await c.set('a', { secret }, { ttl: '10m' })
    await c.set('b', `${secret}-b`)
    const file = join(dir, `${ns}.jsonl`)
    const r = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', file])
    expect(r.code, show(r)).toBe(0)
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n')
    expect(lines).toHaveLength(1 + 2)
    const dumps = Buffer.concat(lines.slice(1).map((l) => Buffer.from((JSON.parse(l) as { v: string }).v, 'base64')))
    expect(showsPiece(dumps, secret) || showsPiece(await readFile(file), secret)).toBe(!encrypted)
    // The backup restores: the entries are still readable with the key.
    await c.clear()
    const restored = await nearcache(['restore', '--redis', url(), '--namespace', ns, '--from', file])
    expect(restored.code, show(restored)).toBe(0)
    const reader = await cacheOf({ namespace: ns, encryption: encrypted ? { keys: KEYS } : false })
    expect(await reader.get('a')).toEqual({ secret })
  })
})

describe('worker threads with encryption', () => {
  it('an attached worker reads and writes encrypted entries through the owner, and its handle carries no key', async () => {
    const ns = uniqueNamespace('encthr')
    const writer = await cacheOf({ namespace: ns, encryption: { keys: KEYS } })
    const main = await cacheOf({ namespace: ns, encryption: { keys: KEYS } })
    const handle = main.handle
    const shown = inspect(handle, { depth: 10, showHidden: true }) + JSON.stringify(handle)
    expect(shown).not.toContain(key.toString('hex'))
    expect(shown).not.toContain(key.toString('base64'))
    expect(handle.options.encryption).toBe(false)
    const worker = await ThreadCache.start(handle)
    cleanup.push(() => worker.stop())
    await writer.set('from-writer', { by: 'writer' })
    expect(await worker.call('get', 'from-writer')).toEqual({ by: 'writer' })
    await worker.call('set', 'from-worker', { by: 'worker' })
    const stored = (await raw.getBuffer(`${ns}:from-worker`)) as Buffer
    expect(EntryCipher.keyIdOf(stored)).toBe(9)
    expect(stored.includes(Buffer.from('worker'))).toBe(false)
    expect(await writer.get('from-worker')).toEqual({ by: 'worker' })
  })
})
