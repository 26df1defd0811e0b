import { lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import { boundedLines } from '../../src/cli/bounded_lines.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { CLI_TIMEOUT, nearcache, show } from '../helpers/cli_runner.js'

/**
 * Backups hold every value of a namespace: `backup --out` files are 0600, never
 * clobbered without --force, never written through a symlink; `restore` writes
 * only into the namespace it is given, only strings, a line at a time.
 */

let raw: Redis
let dir: string
const url = () => inject('redisUrl')
beforeAll(async () => {
  raw = new Redis(url())
  dir = await mkdtemp(join(tmpdir(), 'nc-backup-'))
})
afterAll(async () => {
  raw.disconnect()
  await rm(dir, { recursive: true, force: true })
})

async function filled(ns: string): Promise<void> {
  const cache = await createCache({ redis: url(), namespace: ns, l1: false, invalidation: false })
  await cache.set('a', { v: 1 }, { tags: ['t'] })
  await cache.set('b', 'two', { ttl: '10m' })
  await cache.close()
}

describe('backup --out', { timeout: CLI_TIMEOUT }, () => {
  it('creates the file 0600; an existing file needs --force and is then replaced atomically; no temp file is left', async () => {
    const ns = uniqueNamespace('bk')
    await filled(ns)
    const file = join(dir, `${ns}.jsonl`)
    const r = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', file])
    expect(r.code, show(r)).toBe(0)
    const st = await lstat(file)
    expect(st.mode & 0o777).toBe(0o600)
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(1 + 3)

    await writeFile(file, 'precious\n', { mode: 0o600 })
    const again = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', file])
    expect(again.code, show(again)).toBe(1)
    expect(again.stderr.trim()).toBe(`nearcache: will not write ${file}: it already exists; pass --force to replace it`)
    expect(await readFile(file, 'utf8')).toBe('precious\n')

    const forced = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', file, '--force'])
    expect(forced.code, show(forced)).toBe(0)
    const after = await lstat(file)
    expect(after.ino).not.toBe(st.ino) // a new file put in place (rename), not the old one rewritten
    expect(after.mode & 0o777).toBe(0o600)
    expect((await readFile(file, 'utf8')).split('\n')[0]).toMatch(/^\{"nearcache_backup":1/)
    expect((await readdir(dir)).filter((f) => f.startsWith(`.${ns}`))).toEqual([])
  })

  it('a symlink at --out is refused, even with --force; what it points to is untouched', async () => {
    const ns = uniqueNamespace('bk')
    await filled(ns)
    const target = join(dir, `${ns}-victim`)
    await writeFile(target, 'do not touch\n')
    const link = join(dir, `${ns}-link.jsonl`)
    await symlink(target, link)
    for (const extra of [[], ['--force']]) {
      const r = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', link, ...extra])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr).toMatch(/will not write .*: it is a symbolic link, which backups never follow/)
    }
    expect(await readFile(target, 'utf8')).toBe('do not touch\n')
    expect((await lstat(link)).isSymbolicLink()).toBe(true)
    // A dangling symlink is refused too (an exclusive create must not follow it).
    const dangling = join(dir, `${ns}-dangling.jsonl`)
    await symlink(join(dir, `${ns}-nowhere`), dangling)
    const d = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', dangling])
    expect(d.code, show(d)).toBe(1)
    await expect(lstat(join(dir, `${ns}-nowhere`))).rejects.toThrow(/ENOENT/)
  })
})

describe('restore', { timeout: CLI_TIMEOUT }, () => {
  async function backupOf(ns: string): Promise<string> {
    const file = join(dir, `${ns}-${Math.random().toString(36).slice(2)}.jsonl`)
    const r = await nearcache(['backup', '--redis', url(), '--namespace', ns, '--out', file])
    expect(r.code, show(r)).toBe(0)
    return file
  }

  it('writes only into --namespace: a backup of another namespace is refused, and --into renames its keys', async () => {
    const src = uniqueNamespace('from')
    const dst = uniqueNamespace('into')
    await filled(src)
    const file = await backupOf(src)
    const refused = await nearcache(['restore', '--redis', url(), '--namespace', dst, '--from', file])
    expect(refused.code, show(refused)).toBe(1)
    expect(refused.stderr).toContain(`the backup is of namespace '${src}', not '${dst}'`)
    const byDefault = await nearcache(['restore', '--redis', url(), '--from', file])
    expect(byDefault.code, show(byDefault)).toBe(1)
    expect(byDefault.stderr).toContain(`not 'nc' (--namespace, default 'nc')`)
    expect(await raw.keys(`${dst}:*`)).toEqual([])

    const r = await nearcache(['restore', '--redis', url(), '--into', dst, '--namespace', src, '--from', file, '--json'])
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ namespace: dst, from: src, restored: 3, invalid: 0 })
    expect((await raw.keys(`${dst}:*`)).sort()).toEqual([`${dst}:a`, `${dst}:b`])
    expect(await raw.exists(`__nc|t|${dst}|t`)).toBe(1)
    const cache = await createCache({ redis: url(), namespace: dst, l1: false, invalidation: false })
    try {
      expect(await cache.get('a')).toEqual({ v: 1 })
      expect(await cache.get('b')).toBe('two')
      await cache.invalidateTags(['t'])
      expect(await cache.get('a')).toBeUndefined()
    } finally {
      await cache.close()
    }
    // --namespace with --into names the backup's namespace.
    const wrongSource = await nearcache(['restore', '--redis', url(), '--into', dst, '--namespace', dst, '--from', file])
    expect(wrongSource.code, show(wrongSource)).toBe(1)
  })

  it('restores only string DUMP payloads: a hash, a damaged payload or a key outside the namespace is refused by line and key', async () => {
    const ns = uniqueNamespace('types')
    await filled(ns)
    const good = (await readFile(await backupOf(ns), 'utf8')).trimEnd().split('\n')
    await raw.hset(`${ns}:hash`, 'f', 'v')
    const hashDump = (await raw.dumpBuffer(`${ns}:hash`)) as Buffer
    await raw.del(`${ns}:hash`, `${ns}:a`, `${ns}:b`, `__nc|t|${ns}|t`)
    const flipped = Buffer.from(good[2] ? (JSON.parse(good[2]) as { v: string }).v : '', 'base64')
    flipped[3] = (flipped[3] as number) ^ 1
    const file = join(dir, `${ns}-mixed.jsonl`)
    await writeFile(file, [
      good[0],
      JSON.stringify({ k: `${ns}:hash`, v: hashDump.toString('base64'), pttl: -1 }),
      JSON.stringify({ k: `${ns}:flipped`, v: flipped.toString('base64'), pttl: -1 }),
      JSON.stringify({ k: `${ns}x:evil`, v: (JSON.parse(good[1] as string) as { v: string }).v, pttl: -1 }),
      JSON.stringify({ k: `${ns}:ctl\u001b[2J\u202e`, v: hashDump.toString('base64'), pttl: -1 }),
      good[1],
    ].join('\n'), { mode: 0o600 })
    const r = await nearcache(['restore', '--redis', url(), '--namespace', ns, '--from', file])
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout).toMatch(/: 1 restored, 0 skipped, 4 invalid lines, 0 failed/)
    expect(r.stderr).toContain(`restore: line 2: key "${ns}:hash": the DUMP payload is of RDB type 16, not a string (type 0): nearcache restores only strings`)
    expect(r.stderr).toContain(`restore: line 3: key "${ns}:flipped": the DUMP payload fails its CRC64 check`)
    expect(r.stderr).toContain(`restore: line 4: key "${ns}x:evil" is not in namespace '${ns}' (refused)`)
    // The key is printed escaped: no terminal control reaches the screen.
    expect(r.stderr).toContain('restore: line 5: key "' + ns + ':ctl\\u001b[2J\\u202e"')
    expect(r.stderr).not.toContain('\u001b')
    expect(await raw.exists(`${ns}:hash`, `${ns}:flipped`, `${ns}x:evil`)).toBe(0)
    expect(await raw.type(`${ns}:${(JSON.parse(good[1] as string) as { k: string }).k.slice(ns.length + 1)}`)).toBe('string')
  })

  it('a line longer than the bound is refused with its number, not held in memory; the rest restores', async () => {
    const ns = uniqueNamespace('long')
    await filled(ns)
    const lines = (await readFile(await backupOf(ns), 'utf8')).trimEnd().split('\n')
    await raw.del(`${ns}:a`, `${ns}:b`, `__nc|t|${ns}|t`)
    const file = join(dir, `${ns}-long.jsonl`)
    // --max-value 1kb: lines up to 1368 + 64 KiB bytes.
    await writeFile(file, [lines[0], `{"k":"${ns}:big","v":"${'A'.repeat(200_000)}","pttl":-1}`, ...lines.slice(1)].join('\n'), { mode: 0o600 })
    const r = await nearcache(['restore', '--redis', url(), '--namespace', ns, '--from', file, '--max-value', '1kb'])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toMatch(/^restore: line 2: the line is 200\d{3} bytes long, over the limit for --max-value 1024 \(refused, not read\)$/m)
    expect(r.stdout).toMatch(/: 3 restored, 0 skipped, 1 invalid line, 0 failed/)
    expect(await raw.exists(`${ns}:big`)).toBe(0)
  })
})

describe('boundedLines', () => {
  it('reads 256 MiB without a newline holding at most one chunk and the bound; the next line still comes', async () => {
    const chunk = new Uint8Array(64 * 1024).fill(0x41)
    let held = 0
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 4096; i++) yield chunk
      yield new TextEncoder().encode('\nnext line\n')
    }
    const out: unknown[] = []
    for await (const l of boundedLines(body(), 1024 * 1024, 'test', { skipLong: true })) {
      out.push(l)
      held = Math.max(held, process.memoryUsage().arrayBuffers)
    }
    expect(out).toEqual([{ no: 1, tooLong: 256 * 1024 * 1024 }, { no: 2, text: 'next line', bytes: 10 }])
    // Not a timing or a tight memory bound: 256 MiB kept would show as at least that much.
    expect(held).toBeLessThan(128 * 1024 * 1024)
    await expect(async () => {
      for await (const _ of boundedLines(body(), 1024, 'the stream')) void _
    }).rejects.toThrow('the stream: line 1 is longer than 1024 bytes')
  })
})
