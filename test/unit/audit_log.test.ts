import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createCache } from '../../src/index.js'
import type { AuditRecord, CacheError, CacheOptions, NearCache } from '../../src/index.js'
import { resolveOptions } from '../../src/options/options.js'

const caches: NearCache[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()))
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})

const PRINCIPALS: CacheOptions['access'] = {
  principals: {
    reader: { can: ['read'], keys: ['user:*'] },
    admin: { can: ['read', 'write', 'delete', 'admin'], keys: ['*'] },
  },
}

async function make(opts: Partial<CacheOptions>): Promise<NearCache> {
  const c = await createCache({ redis: false, l1: { maxBytes: '1mb' }, namespace: 'shop', access: PRINCIPALS, ...opts })
  caches.push(c)
  return c
}

/** A function sink collecting every record. */
function collector(): { sink: (r: AuditRecord[]) => void; records: AuditRecord[] } {
  const records: AuditRecord[] = []
  return { sink: (rs) => void records.push(...rs), records }
}

describe('audit records', () => {
  it('records plain-cache calls (principal null) and view calls (their principal), with outcome, duration and thread', async () => {
    const { sink, records } = collector()
    const c = await make({ audit: { sink } })
    const t = performance.now()
    await c.set('user:1', 'a')
    const spent = performance.now() - t
    await c.as('reader').get('user:1')
    await c.as('reader').get('admin:1').catch(() => {})
    await c.getMany(['user:1', 'user:2'])
    await vi.waitFor(() => expect(records).toHaveLength(4), { timeout: 20_000 })
    const [set, get, denied, many] = records as [AuditRecord, AuditRecord, AuditRecord, AuditRecord]
    expect(set).toMatchObject({ principal: null, operation: 'set', namespace: 'shop', key: 'user:1', outcome: 'ok', thread: 0 })
    expect(get).toMatchObject({ principal: 'reader', operation: 'get', key: 'user:1', outcome: 'ok' })
    expect(denied).toMatchObject({ principal: 'reader', operation: 'get', key: 'admin:1', outcome: 'E_FORBIDDEN' })
    expect(many).toMatchObject({ principal: null, operation: 'getMany', keys: ['user:1', 'user:2'], outcome: 'ok' })
    expect(Number.isNaN(Date.parse(set.time))).toBe(false)
    // The call's own duration: within what the caller measured around it (a wrong unit or garbage breaks it).
    // A set takes microseconds, which performance.now resolves: 0 would mean it was never timed.
    expect(set.durationMs).toBeGreaterThan(0)
    expect(set.durationMs).toBeLessThanOrEqual(spent + 0.01)
  })

  it('one call is one record: delete (which runs deleteMany) and a view call into the cache are not recorded twice', async () => {
    const { sink, records } = collector()
    const c = await make({ audit: { sink } })
    await c.set('user:1', 1)
    expect(await c.delete('user:1')).toBe(true)
    await c.as('admin').set('user:2', 2)
    await c.as('admin').delete('user:2')
    await c.as('admin').deleteMany(['user:3'])
    await vi.waitFor(() => expect(records).toHaveLength(5), { timeout: 20_000 })
    // Nothing else arrives after a later call's record either.
    await c.get('end')
    await vi.waitFor(() => expect(records).toHaveLength(6), { timeout: 20_000 })
    expect(records.map((r) => `${r.principal}:${r.operation}`)).toEqual(['null:set', 'null:delete', 'admin:set', 'admin:delete', 'admin:deleteMany', 'null:get'])
  })

  it('getSync is recorded like get: a hit, a miss and a refused key, each once', async () => {
    const { sink, records } = collector()
    const c = await make({ audit: { sink } })
    await c.set('user:1', 1)
    expect(c.getSync('user:1')).toBe(1)
    expect(c.getSync('user:2')).toBeUndefined()
    expect(() => c.getSync('')).toThrow(expect.objectContaining({ code: 'E_INVALID_KEY' }))
    await vi.waitFor(() => expect(records).toHaveLength(4), { timeout: 20_000 })
    expect(records.map((r) => `${r.operation}:${r.key ?? ''}:${r.outcome}`)).toEqual(['set:user:1:ok', 'getSync:user:1:ok', 'getSync:user:2:ok', 'getSync::E_INVALID_KEY'])
  })

  it('bounds batches to 16 keys plus a count, and long keys', async () => {
    const { sink, records } = collector()
    const c = await make({ audit: { sink } })
    await c.getMany(Array.from({ length: 40 }, (_, i) => `k${i}`))
    await c.get('x'.repeat(900))
    await vi.waitFor(() => expect(records).toHaveLength(2), { timeout: 20_000 })
    expect(records[0]?.keys).toHaveLength(16)
    expect(records[0]?.keyCount).toBe(40)
    expect(records[1]?.key?.length).toBeLessThan(300)
  })

  it("operations: a list picks what is recorded; admin calls and denials are recorded anyway", async () => {
    const { sink, records } = collector()
    const c = await make({ audit: { sink, operations: ['set'] } })
    await c.get('user:1')
    await c.set('user:1', 1)
    await c.as('reader').get('user:1')
    await c.as('reader').set('user:1', 2).catch(() => {})
    await c.invalidateTags(['t'])
    await c.as('admin').clear()
    await vi.waitFor(() => expect(records.map((r) => `${r.principal}:${r.operation}:${r.outcome}`)).toEqual(['null:set:ok', 'reader:set:E_FORBIDDEN', 'null:invalidateTags:ok', 'admin:clear:ok']), { timeout: 20_000 })
  })

  it('hashKeys: keys become keyed hashes (hashKey, or derived from the encryption key); equal keys hash equally', async () => {
    const a = collector()
    const c = await make({ audit: { sink: a.sink, hashKeys: true, hashKey: Buffer.alloc(32, 7) } })
    await c.get('user:123')
    await c.get('user:123')
    await c.getMany(['user:123', 'user:124'])
    await vi.waitFor(() => expect(a.records).toHaveLength(3), { timeout: 20_000 })
    const h = a.records[0]?.key as string
    expect(h).toMatch(/^hmac-sha256:[0-9a-f]{32}$/)
    expect(a.records[1]?.key).toBe(h)
    expect(a.records[2]?.keys?.[0]).toBe(h)
    expect(a.records[2]?.keys?.[1]).not.toBe(h)
    expect(JSON.stringify(a.records)).not.toContain('user:12')

    const b = collector()
    const d = await make({ audit: { sink: b.sink, hashKeys: true }, encryption: { keys: [{ id: 1, key: Buffer.alloc(32, 9) }] } })
    await d.get('user:123')
    await vi.waitFor(() => expect(b.records).toHaveLength(1), { timeout: 20_000 })
    expect(b.records[0]?.key).toMatch(/^hmac-sha256:[0-9a-f]{32}$/)
    expect(b.records[0]?.key).not.toBe(h)

    const e = await createCache({ redis: false, audit: { sink: () => {}, hashKeys: true } }).then(
      () => undefined,
      (err: unknown) => err as CacheError,
    )
    expect(e?.code).toBe('E_INVALID_OPTION')
    const shown = inspect(resolveOptions({ redis: false, audit: { sink: '/tmp/a', hashKeys: true, hashKey: Buffer.alloc(32, 0xab) } }), { depth: 10 })
    expect(shown).not.toMatch(/ab ab|q6urq6u|171, 171/)
  })

  it('a throwing sink never breaks a call: its records are counted as dropped and reported at most once a second', async () => {
    const errors: { e: CacheError; at: number }[] = []
    const c = await make({ audit: { sink: () => { throw new Error('disk full') } } })
    c.on('error', (e) => errors.push({ e: e as CacheError, at: performance.now() }))
    for (let i = 0; i < 5; i++) await c.set(`k${i}`, i)
    expect(await c.get('k4')).toBe(4)
    await vi.waitFor(() => expect(c.stats().process.auditDropped).toBe(6), { timeout: 20_000 })
    expect(errors.length).toBeGreaterThanOrEqual(1)
    expect(errors[0]?.e.code).toBe('E_AUDIT_DROPPED')
    expect(errors[0]?.e.message).toMatch(/Dropped \d+ audit records?: the sink failed/)
    for (let i = 1; i < errors.length; i++) expect((errors[i] as { at: number }).at - (errors[i - 1] as { at: number }).at).toBeGreaterThanOrEqual(999)
  })

  it('a sink that falls behind is bounded by maxQueue; calls never wait for it', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const seen: AuditRecord[] = []
    const c = await make({ audit: { sink: async (rs) => { seen.push(...rs); await gate }, maxQueue: 5 } })
    await c.set('first', 0)
    await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 20_000 })
    // The sink is now stuck; 20 more calls all complete.
    for (let i = 0; i < 20; i++) await c.set(`k${i}`, i)
    expect(c.stats().process.auditDropped).toBe(15)
    release()
    await vi.waitFor(() => expect(seen).toHaveLength(6), { timeout: 20_000 })
    expect(seen.slice(1).map((r) => r.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4'])
  })
})

describe('audit file sink', () => {
  it('writes JSON lines, 0600 in a 0700 directory, rotates by size and keeps maxFiles old files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'nc-audit-'))
    dirs.push(root)
    const file = join(root, 'logs', 'audit.jsonl')
    const c = await createCache({ redis: false, l1: { maxBytes: '1mb' }, audit: { sink: file, maxFileBytes: 600, maxFiles: 2 } })
    await c.set('first', 1)
    await vi.waitFor(async () => expect((await readFile(file, 'utf8')).length).toBeGreaterThan(0), { timeout: 20_000 })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(join(root, 'logs'))).mode & 0o777).toBe(0o700)
    for (let i = 0; i < 60; i++) await c.set(`key-${i}`, i)
    await c.close()
    const names = (await readdir(join(root, 'logs'))).sort()
    expect(names).toEqual(['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2'])
    const all: AuditRecord[] = []
    for (const n of names) {
      const text = await readFile(join(root, 'logs', n), 'utf8')
      expect(text.endsWith('\n')).toBe(true)
      for (const line of text.trimEnd().split('\n')) all.push(JSON.parse(line) as AuditRecord)
      if (n !== 'audit.jsonl') expect((await stat(join(root, 'logs', n))).mode & 0o777).toBe(0o600)
    }
    // The newest records survive rotation; the oldest were rotated out.
    expect(all.some((r) => r.key === 'key-59')).toBe(true)
    expect(all.some((r) => r.key === 'first')).toBe(false)
    expect(all.every((r) => r.operation === 'set' && r.outcome === 'ok' && r.principal === null)).toBe(true)
  })
})

describe('audit file sink checks', () => {
  it('createCache refuses a path that cannot hold the log (E_INVALID_OPTION): a directory, a symlink, a group-writable directory', async () => {
    const { chmod, mkdir, symlink, writeFile } = await import('node:fs/promises')
    const root = await mkdtemp(join(tmpdir(), 'nc-audit-bad-'))
    dirs.push(root)
    await mkdir(join(root, 'adir'))
    await writeFile(join(root, 'target'), '')
    await symlink(join(root, 'target'), join(root, 'link'))
    await mkdir(join(root, 'open'), { mode: 0o777 })
    await chmod(join(root, 'open'), 0o777)
    for (const [sink, msg] of [
      [join(root, 'adir'), /cannot be opened|not a regular file/],
      [join(root, 'link'), /cannot be opened/],
      [join(root, 'open', 'audit.jsonl'), /writable by group/],
    ] as const) {
      const err = await createCache({ redis: false, l1: { maxBytes: '1mb' }, audit: { sink } }).then(
        async (c) => {
          await c.close()
          return undefined
        },
        (e: unknown) => e as CacheError,
      )
      expect(err?.code, sink).toBe('E_INVALID_OPTION')
      expect(err?.message).toMatch(msg)
    }
  })
})

describe('audit records from elsewhere', () => {
  it("a CLI admin command's record lands in the same file format (principal 'cli')", async () => {
    const { auditCommand } = await import('../../src/access/audit_cli.js')
    const root = await mkdtemp(join(tmpdir(), 'nc-audit-cli-'))
    dirs.push(root)
    const file = join(root, 'audit.jsonl')
    await auditCommand(file, { operation: 'rekey', namespace: 'shop', outcome: 'ok', startedAt: Date.UTC(2026, 0, 1), durationMs: 12.5, keyCount: 300 })
    const [line, ...rest] = (await readFile(file, 'utf8')).trimEnd().split('\n')
    expect(rest).toHaveLength(0)
    expect(JSON.parse(line as string)).toEqual({ time: '2026-01-01T00:00:00.000Z', principal: 'cli', operation: 'rekey', namespace: 'shop', keys: [], keyCount: 300, outcome: 'ok', durationMs: 12.5, thread: 0 })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it("an attached worker thread's calls reach the owner's log, with the worker's thread id; junk on the channel is ignored", async () => {
    const { startWorker } = await import('../helpers/thread_client.js')
    const { BroadcastChannel } = await import('node:worker_threads')
    const { sink, records } = collector()
    const c = await make({ audit: { sink } })
    const w = await startWorker('access_worker.ts', { handle: c.handle })
    try {
      const junk = new BroadcastChannel(c.handle.access.audit?.channel as string)
      junk.postMessage([{ operation: 'get' }, 'x', null, { time: 1, principal: 5 }])
      junk.postMessage('not a batch')
      junk.close()
      const done = (id: number) => new Promise((resolve) => w.on('message', (m: { id?: number }) => m.id === id && resolve(m)))
      w.postMessage({ id: 1, principal: null, op: 'set', args: ['user:1', 1] })
      await done(1)
      w.postMessage({ id: 2, principal: 'reader', op: 'get', args: ['admin:1'] })
      await done(2)
      await vi.waitFor(() => expect(records).toHaveLength(2), { timeout: 20_000 })
      expect(records[0]).toMatchObject({ principal: null, operation: 'set', key: 'user:1', outcome: 'ok' })
      expect(records[1]).toMatchObject({ principal: 'reader', operation: 'get', key: 'admin:1', outcome: 'E_FORBIDDEN' })
      expect(records[0]?.thread).toBe(w.threadId)
      expect(w.threadId).not.toBe(0)
    } finally {
      await w.terminate()
    }
  })
})
