import { chmodSync, chownSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { InvalidOptionError } from '../../src/errors.js'
import { WriteAheadLog } from '../../src/wal/wal.js'
import { WriteBehind } from '../../src/wal/write_behind.js'
import { secureDir } from '../../src/wal/wal_files.js'

/** The log's files on disk: modes, owners, symlinks (finding: world-readable files, foreign directories and segments accepted, temp files followed symlinks). */
const dirs: string[] = []
const opened: { close(): Promise<unknown> }[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close().catch(() => {})
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nc-walf-'))
  dirs.push(d)
  return d
}
const mode = (p: string): number => lstatSync(p).mode & 0o777
const bytes = (s: string) => [{ key: `ns:${s}`, bytes: Buffer.from(s), px: undefined }]
const isRoot = process.getuid?.() === 0
const OTHER_UID = 65534

async function open(dir: string): Promise<WriteAheadLog> {
  const wal = await WriteAheadLog.open(dir, { fsync: 'batch' })
  opened.push(wal)
  return wal
}

describe('write-ahead log files', () => {
  it("a directory that cannot be made fails at once, also where Node's recursive mkdir never settles (under /proc)", async () => {
    // fs.mkdir(…, { recursive: true }) loops forever on /proc/<missing>/x; createCache with such a writeBehind.dir or audit file hung.
    await expect(secureDir('/proc/nearcache-no-such/wal')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(secureDir('/etc/hostname/wal')).rejects.toMatchObject({ code: 'ENOTDIR' })
    const base = mkdtempSync(join(tmpdir(), 'nc-mkdirs-'))
    try {
      await secureDir(join(base, 'a', 'b', 'c'))
      expect(statSync(join(base, 'a', 'b', 'c')).mode & 0o777).toBe(0o700)
      expect(statSync(join(base, 'a')).mode & 0o777).toBe(0o700)
      await secureDir(join(base, 'a', 'b', 'c'))
    } finally {
      rmSync(base, { recursive: true, force: true })
    }
  })


  it('creates the directory 0700 and every file 0600, whatever the umask', async () => {
    const dir = join(tempDir(), 'a', 'wal')
    const old = process.umask(0)
    try {
      const wb = await WriteBehind.open({ dir, flush: async () => {}, flushIntervalMs: 3_600_000 })
      opened.push(wb)
      await wb.enqueue(bytes('x'))
      await wb.drain()
      expect(mode(dir)).toBe(0o700)
      const files = readdirSync(dir)
      expect(files).toEqual(expect.arrayContaining(['lock', 'dead-letter.jsonl']))
      expect(files.some((f) => /^wal-\d{16}\.log$/.test(f))).toBe(true)
      for (const f of files) expect([f, mode(join(dir, f))]).toEqual([f, 0o600])
      await wb.close()
      // The checkpoint written by the acknowledgement.
      expect(mode(join(dir, 'checkpoint'))).toBe(0o600)
    } finally {
      process.umask(old)
    }
  })

  it('refuses a directory writable by group or others, saying what it found and what it needs', async () => {
    for (const [m, who] of [[0o777, /writable by group and others/], [0o702, /writable by others/], [0o770, /writable by group/]] as const) {
      const dir = tempDir()
      chmodSync(dir, m)
      const err = await WriteAheadLog.open(dir, { fsync: 'batch' }).then(() => undefined, (e: unknown) => e)
      expect(err).toBeInstanceOf(InvalidOptionError)
      expect((err as InvalidOptionError).code).toBe('E_INVALID_OPTION')
      expect((err as Error).message).toContain(`mode 0${m.toString(8)}`)
      expect((err as Error).message).toMatch(who)
      expect((err as Error).message).toContain('chmod 700')
      expect(existsSync(join(dir, 'lock'))).toBe(false) // nothing written into it
    }
  })

  it('tightens an existing 0755 directory of its own user to 0700', async () => {
    const dir = tempDir()
    chmodSync(dir, 0o755)
    await (await open(dir)).close()
    expect(mode(dir)).toBe(0o700)
  })

  it.runIf(isRoot)('refuses a directory owned by another user', async () => {
    const dir = tempDir()
    chownSync(dir, OTHER_UID, OTHER_UID)
    const err = await WriteAheadLog.open(dir, { fsync: 'batch' }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as Error).message).toContain(`owned by uid ${OTHER_UID}`)
    expect((err as Error).message).toContain(`must be owned by uid ${process.getuid?.()}`)
  })

  it.runIf(isRoot)('refuses a segment owned by another user, and replays nothing of it', async () => {
    const dir = tempDir()
    const wal = await open(dir)
    await wal.append(bytes('planted'))
    await wal.close()
    const seg = readdirSync(dir).find((f) => f.startsWith('wal-')) as string
    chownSync(join(dir, seg), OTHER_UID, OTHER_UID)
    const err = await WriteAheadLog.open(dir, { fsync: 'batch' }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as Error).message).toContain(`${seg} is owned by uid ${OTHER_UID}`)
    expect(existsSync(join(dir, 'lock'))).toBe(false) // the lock was released
  })

  it('refuses a segment that is a symlink instead of reading through it', async () => {
    const dir = tempDir()
    const outside = join(tempDir(), 'elsewhere.log')
    writeFileSync(outside, 'not a segment')
    symlinkSync(outside, join(dir, 'wal-0000000000000001.log'))
    const err = await WriteAheadLog.open(dir, { fsync: 'batch' }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as Error).message).toMatch(/not a regular file/)
    expect(readFileSync(outside, 'utf8')).toBe('not a segment')
  })

  it('never writes the checkpoint through a symlink planted at its temp path', async () => {
    const dir = tempDir()
    const victim = join(tempDir(), 'victim')
    writeFileSync(victim, 'precious')
    const wal = await open(dir)
    const seq = await wal.append(bytes('a'))
    // Planted after open (open removes a leftover temp file).
    symlinkSync(victim, join(dir, 'checkpoint.tmp'))
    await wal.ack(seq)
    expect(readFileSync(victim, 'utf8')).toBe('precious')
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint'), 'utf8'))).toEqual({ version: 1, acked: seq })
    expect(lstatSync(join(dir, 'checkpoint')).isSymbolicLink()).toBe(false)
    expect(existsSync(join(dir, 'checkpoint.tmp'))).toBe(false)
  })

  it('never appends dead letters through a symlink planted at the dead-letter path', async () => {
    const dir = tempDir()
    chmodSync(dir, 0o700)
    const victim = join(tempDir(), 'victim')
    writeFileSync(victim, 'precious')
    symlinkSync(victim, join(dir, 'dead-letter.jsonl'))
    const err = await WriteBehind.open({ dir, flush: async () => {} }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidOptionError)
    expect((err as Error).message).toMatch(/symlink/)
    expect(readFileSync(victim, 'utf8')).toBe('precious')
    expect(statSync(dir).isDirectory()).toBe(true)
    expect(existsSync(join(dir, 'lock'))).toBe(false)
  })
})
