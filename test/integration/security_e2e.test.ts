import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheError, CacheOptions, NearCache } from '../../src/index.js'
import { aclRule } from '../../src/security/acl_rule.js'
import { EntryCipher } from '../../src/security/entry_cipher.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { until } from '../helpers/wait.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { makeTlsFiles } from '../helpers/tls_certs.js'
import type { TlsFiles } from '../helpers/tls_certs.js'

/**
 * Every security part at once, as production would run it: a TLS-only server
 * that requires client certificates, an ACL user holding only the rule
 * `nearcache acl --rate-limit` prints, entries encrypted, signed invalidation,
 * principals with a distributed rate limit, write-behind, and an audit file with
 * hashed keys. Nothing is refused that the rule should allow (ACL LOG stays
 * empty), and nothing readable is stored.
 */
describe('security parts together: mTLS + ACL user + encryption + principals + audit', () => {
  let files: TlsFiles
  let server: RedisServerHandle
  let admin: Redis
  let dir: string
  const password = randomBytes(16).toString('hex')
  const keys = [{ id: 7, key: randomBytes(32) }]

  beforeAll(async () => {
    files = makeTlsFiles()
    server = await startStandalone({ tls: { files, authClients: 'yes' } })
    admin = new Redis({ host: '127.0.0.1', port: server.port, tls: { ca: files.caPem, cert: files.client.certPem, key: files.client.keyPem } })
    dir = await mkdtemp(join(tmpdir(), 'nc-sec-e2e-'))
  })
  afterAll(async () => {
    admin?.disconnect()
    await server?.stop()
    files?.remove()
    await rm(dir, { recursive: true, force: true })
  })

  it('the whole configuration works, stores nothing readable, and the rule refuses nothing', async () => {
    const ns = uniqueNamespace('sec')
    const rule = aclRule({ namespace: ns, rateLimit: true })
    await admin.call('ACL', 'SETUSER', ...rule.args, `>${password}`)
    await admin.call('ACL', 'LOG', 'RESET')
    const secret = `secret-${randomBytes(8).toString('hex')}`
    const options = (extra: CacheOptions = {}): CacheOptions => ({
      redis: { host: '127.0.0.1', port: server.port, username: rule.user, password, tls: { ca: files.caPem, cert: files.client.certPem, key: files.client.keyPem } },
      namespace: ns,
      encryption: { keys },
      stampedeLock: true,
      access: { principals: { svc: { can: ['read', 'write'], keys: ['user:*'], rateLimit: { rate: 1000, burst: 50, distributed: true, onL2Error: 'deny' } } } },
      ...extra,
    })
    const errors: CacheError[] = []
    const open = async (extra?: CacheOptions): Promise<NearCache> => {
      const c = await createCache(options(extra))
      c.on('error', (e) => errors.push(e as CacheError))
      return c
    }
    const auditFile = join(dir, 'audit', 'audit.jsonl')
    const a = await open({ writeBehind: { dir: join(dir, 'wal') }, audit: { sink: auditFile, hashKeys: true } })
    const b = await open()
    try {
      const svc = a.as('svc')
      await svc.set('user:1', { role: 'user', secret })
      expect(await svc.get('user:1')).toEqual({ role: 'user', secret })
      expect((await svc.getOrSet('user:2', async () => ({ n: 2 }))) as unknown).toEqual({ n: 2 })
      await expect(svc.get('admin:1')).rejects.toMatchObject({ code: 'E_FORBIDDEN' })
      await a.set('tagged', 1, { tags: ['t'] })
      await a.close() // drains write-behind: every write is in Redis now
      // Another process reads what the first wrote, through its own L1; a change from it reaches it (signed).
      expect(await b.get('user:1')).toEqual({ role: 'user', secret })
      expect(await b.get('tagged')).toBe(1)
      const c = await open()
      await c.set('user:1', { role: 'user', secret: 'changed' })
      await c.invalidateTags(['t'])
      // Two announcements (the key, then the tag's epoch), each reaching b in its own time.
      await until('the change of user:1 to reach the other process', async () => ((await b.get('user:1')) as { secret?: string } | undefined)?.secret === 'changed')
      await until('the tag invalidation to reach the other process', async () => (await b.get('tagged')) === undefined)
      // Health works as the ACL user: Redis answered the health read and the breaker is closed. (The status may
      // be 'degraded' on a loaded machine, where a TLS round trip can exceed the 50 ms latency threshold.)
      const health = await b.health()
      expect(health.status).not.toBe('down')
      expect(health.circuit).toBe('closed')
      expect(health.l2.pingMs).toBeTypeOf('number')
      expect(health.recommendations.filter((r) => !/latency|ping takes/.test(r))).toEqual([])
      // What Redis holds of the namespace: sealed under key 7, the secret nowhere.
      const stored = await admin.keys(`${ns}:*`)
      expect(stored.sort()).toEqual([`${ns}:tagged`, `${ns}:user:1`, `${ns}:user:2`])
      for (const k of stored) {
        const bytes = (await admin.getBuffer(k)) as Buffer
        expect(EntryCipher.keyIdOf(bytes)).toBe(7)
        expect(bytes.includes('secret-')).toBe(false)
      }
      await c.clear()
      expect(await admin.keys(`${ns}:*`)).toEqual([])
      await c.close()
    } finally {
      await b.close()
    }

    // Nothing the rule should allow was refused, and nothing else went wrong.
    expect(await admin.call('ACL', 'LOG')).toEqual([])
    expect(errors.map((e) => `${e.code}: ${e.message}`)).toEqual([])
    const audit = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(audit.some((r) => r.principal === 'svc' && r.outcome === 'E_FORBIDDEN')).toBe(true)
    expect(JSON.stringify(audit)).not.toContain('user:1')
    expect(audit.every((r) => r.key === undefined || String(r.key).startsWith('hmac-sha256:'))).toBe(true)
  })

  it('what is stored in Redis is sealed under the configured key', async () => {
    const ns = uniqueNamespace('sec')
    const rule = aclRule({ namespace: ns })
    await admin.call('ACL', 'SETUSER', ...rule.args, `>${password}`)
    const c = await createCache({
      redis: { host: '127.0.0.1', port: server.port, username: rule.user, password, tls: { ca: files.caPem, cert: files.client.certPem, key: files.client.keyPem } },
      namespace: ns,
      encryption: { keys },
    })
    try {
      await c.set('k', { secret: 'plain text never stored' })
      const stored = (await admin.getBuffer(`${ns}:k`)) as Buffer
      expect(EntryCipher.keyIdOf(stored)).toBe(7)
      expect(stored.includes('plain text never stored')).toBe(false)
    } finally {
      await c.close()
    }
  })
})
