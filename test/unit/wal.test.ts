import { spawnSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as zlib from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { CacheError, InvalidOptionError, QueueFullError, WalCorruptionError } from '../../src/errors.js'
import type { TierWrite } from '../../src/tiers/tier.js'
import { checkFsync } from '../../src/wal/fsync.js'
import type { FsyncPolicy } from '../../src/wal/fsync.js'
import { WriteAheadLog } from '../../src/wal/wal.js'
import { crc32, crc32Fallback } from '../../src/wal/wal_crc.js'
import type { WalRecord } from '../../src/wal/wal_record.js'
import { scanSegment } from '../../src/wal/wal_scan.js'
import { WriteBehind } from '../../src/wal/write_behind.js'

const dirs: string[] = []
const opened: { close(): Promise<unknown> }[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close().catch(() => {})
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nc-wal-'))
  dirs.push(d)
  return d
}

async function openWal(dir: string, fsync: FsyncPolicy = 'batch', extra: { segmentBytes?: number; corruptions?: WalCorruptionError[] } = {}): Promise<WriteAheadLog> {
  const wal = await WriteAheadLog.open(dir, { fsync, segmentBytes: extra.segmentBytes, onCorruption: (e) => extra.corruptions?.push(e) })
  opened.push(wal)
  return wal
}

async function collect(it: AsyncIterable<WalRecord>): Promise<WalRecord[]> {
  const out: WalRecord[] = []
  for await (const r of it) out.push(r)
  return out
}

const w = (key: string, value: string | Buffer, px?: number): TierWrite => ({ key, bytes: Buffer.isBuffer(value) ? value : Buffer.from(value), px })
const plain = (ws: TierWrite[]): { key: string; bytes: string; px: number | undefined }[] => ws.map((x) => ({ key: x.key, bytes: Buffer.from(x.bytes).toString('hex'), px: x.px }))
const segments = (dir: string): string[] => readdirSync(dir).filter((n) => /^wal-\d{16}\.log$/.test(n)).sort()

const flip = (buf: Buffer, at: number, mask: number): void => void buf.writeUInt8(buf.readUInt8(at) ^ mask, at)

/** Byte offsets of the records in a segment file (walks the length prefixes). */
function recordOffsets(file: string): number[] {
  const buf = readFileSync(file)
  const out: number[] = []
  for (let o = 0; o + 8 <= buf.length; o += 8 + buf.readUInt32LE(o)) out.push(o)
  return out
}

describe('write-ahead log', () => {
  it('CRC-32: the fallback table matches zlib and the standard check value', () => {
    const data = Buffer.from('123456789')
    expect(crc32Fallback(data)).toBe(0xcbf43926)
    expect(crc32(data)).toBe(0xcbf43926)
    const native = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32
    console.log(`[wal] zlib.crc32 on this Node (${process.version}): ${native ? 'yes' : 'no, table fallback'}`)
    const rnd = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff))
    if (native) expect(crc32Fallback(rnd)).toBe(native(rnd))
    expect(crc32Fallback(rnd.subarray(100), crc32Fallback(rnd.subarray(0, 100)))).toBe(crc32Fallback(rnd))
  })

  it('round trip: batches come back in order with keys, bytes and px intact after reopen', async () => {
    const dir = tempDir()
    const batches: TierWrite[][] = [
      [w('a', 'one'), w('b', Buffer.from([0, 255, 1, 254]), 1500)],
      [w('ключ:🔑', ''), w('c', Buffer.alloc(70_000, 7), 0.5)],
      [],
      [w('a', 'two', 86_400_000)],
    ]
    const wal = await openWal(dir)
    const seqs = await Promise.all(batches.map((b) => wal.append(b)))
    expect(seqs).toEqual([1, 2, 3, 4])
    await wal.close()

    const again = await openWal(dir)
    const recs = await collect(again.replay())
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4])
    expect(recs.map((r) => plain(r.writes))).toEqual(batches.map(plain))
    for (const r of recs) expect(Math.abs(r.time - Date.now())).toBeLessThan(10_000)
    expect(again.nextSeq).toBe(5)
    expect(again.corruptions).toEqual([])
    expect(await again.append([w('d', 'x')])).toBe(5)
  })

  it('a torn last record (cut mid-record by hand) is not replayed and is truncated away', async () => {
    const dir = tempDir()
    const wal = await openWal(dir)
    for (let i = 1; i <= 3; i++) await wal.append([w(`k${i}`, `value ${i}`.repeat(10))])
    await wal.close()
    const [name] = segments(dir)
    const file = join(dir, name as string)
    const offsets = recordOffsets(file)
    const full = statSync(file).size
    truncateSync(file, full - 7) // the last record loses its end

    const corruptions: WalCorruptionError[] = []
    const again = await openWal(dir, 'batch', { corruptions })
    expect(statSync(file).size).toBe(offsets[2]) // cut back to the end of record 2
    expect(again.recovery.tornTailBytes).toBe(full - 7 - (offsets[2] as number))
    const recs = await collect(again.replay())
    expect(recs.map((r) => r.writes[0]?.key)).toEqual(['k1', 'k2'])
    expect(corruptions).toEqual([])
    // The next append continues the numbering where the good records stop.
    expect(await again.append([w('k3', 'again')])).toBe(3)
    await again.close()
    expect((await collect((await openWal(dir)).replay())).map((r) => r.writes[0]?.key)).toEqual(['k1', 'k2', 'k3'])
  })

  it('a torn tail of any shape is cut: short header, zero fill, CRC mismatch in the last record', async () => {
    for (const damage of ['short-header', 'zero-fill', 'last-crc'] as const) {
      const dir = tempDir()
      const wal = await openWal(dir)
      await wal.append([w('k1', 'v1')])
      await wal.append([w('k2', 'v2')])
      await wal.close()
      const file = join(dir, segments(dir)[0] as string)
      const offsets = recordOffsets(file)
      const orig = statSync(file).size
      if (damage === 'short-header') appendFileSync(file, Buffer.from([9, 0, 0]))
      if (damage === 'zero-fill') appendFileSync(file, Buffer.alloc(4096))
      if (damage === 'last-crc') {
        const buf = readFileSync(file)
        flip(buf, buf.length - 1, 0x40)
        writeFileSync(file, buf)
      }
      const corruptions: WalCorruptionError[] = []
      const again = await openWal(dir, 'batch', { corruptions })
      const keys = (await collect(again.replay())).map((r) => r.writes[0]?.key)
      expect(keys, damage).toEqual(damage === 'last-crc' ? ['k1'] : ['k1', 'k2'])
      expect(statSync(file).size, damage).toBe(damage === 'last-crc' ? offsets[1] : orig)
      expect(again.recovery.tornTailBytes, damage).toBeGreaterThan(0)
      expect(corruptions, damage).toEqual([])
      await again.close()
    }
  })

  it('CRC damage in the middle of a segment is detected: replay stops that segment, reports it, keeps the file, goes on', async () => {
    const dir = tempDir()
    const wal = await openWal(dir, 'batch', { segmentBytes: 300 })
    for (let i = 1; i <= 9; i++) await wal.append([w(`k${i}`, `value-${i}-`.repeat(6))])
    await wal.close()
    const names = segments(dir)
    expect(names.length).toBeGreaterThanOrEqual(3)
    // Damage the second record of the first segment.
    const first = join(dir, names[0] as string)
    const offsets = recordOffsets(first)
    expect(offsets.length).toBeGreaterThanOrEqual(3)
    const buf = readFileSync(first)
    flip(buf, (offsets[1] as number) + 40, 0x01)
    writeFileSync(first, buf)

    const corruptions: WalCorruptionError[] = []
    const again = await openWal(dir, 'batch', { segmentBytes: 300, corruptions })
    const recs = await collect(again.replay())
    const perSeg = offsets.length
    // Record 1 replayed; records 2..perSeg lost (reported); every later segment replayed.
    expect(recs.map((r) => r.seq)).toEqual([1, ...Array.from({ length: 9 - perSeg }, (_, i) => perSeg + 1 + i)])
    expect(corruptions).toHaveLength(1)
    const c = corruptions[0] as WalCorruptionError
    expect(c).toBeInstanceOf(WalCorruptionError)
    expect(c.code).toBe('E_WAL_CORRUPT')
    expect(c).toBeInstanceOf(CacheError)
    expect(c.file).toBe(first)
    expect(c.offset).toBe(offsets[1])
    expect(c.lostSeqs).toEqual({ from: 2, to: perSeg })
    expect(c.bytesSkipped).toBe(buf.length - (offsets[1] as number))
    expect(c.message).toMatch(/damaged at byte \d+ \(a CRC-32 mismatch\)/)
    expect(c.quarantinedAs).toBe(`${first}.corrupt`)
    expect(existsSync(`${first}.corrupt`)).toBe(true)
    expect(existsSync(first)).toBe(false)
    expect(again.corruptions).toEqual(corruptions)
  })

  it('damage in the newest segment followed by valid records is damage, not a torn tail', async () => {
    const dir = tempDir()
    const wal = await openWal(dir)
    for (let i = 1; i <= 4; i++) await wal.append([w(`k${i}`, `v${i}`)])
    await wal.close()
    const file = join(dir, segments(dir)[0] as string)
    const offsets = recordOffsets(file)
    const size = statSync(file).size
    const buf = readFileSync(file)
    buf.writeUInt32LE(0x7fff_ffff, offsets[1] as number) // a length running past the end
    writeFileSync(file, buf)

    const corruptions: WalCorruptionError[] = []
    const again = await openWal(dir, 'batch', { corruptions })
    expect(again.recovery.tornTailBytes).toBe(0)
    expect(statSync(file).size).toBe(size) // not truncated: valid records follow the damage
    expect(again.nextSeq).toBe(5) // numbers seen past the damage are not reused
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual([1])
    expect(corruptions.map((c) => c.lostSeqs)).toEqual([{ from: 2, to: 4 }])
    expect(await again.append([w('k5', 'v5')])).toBe(5)
  })

  it('records missing between segments are reported, not skipped silently', async () => {
    const dir = tempDir()
    const wal = await openWal(dir, 'batch', { segmentBytes: 100 })
    for (let i = 1; i <= 4; i++) await wal.append([w(`k${i}`, 'x'.repeat(80))])
    await wal.close()
    const names = segments(dir)
    expect(names).toHaveLength(4) // one record per segment
    rmSync(join(dir, names[1] as string))
    const corruptions: WalCorruptionError[] = []
    const again = await openWal(dir, 'batch', { corruptions })
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual([1, 3, 4])
    expect(corruptions.map((c) => c.lostSeqs)).toEqual([{ from: 2, to: 2 }])
    expect(corruptions[0]?.message).toMatch(/missing between segments/)
  })

  it('ack persists a checkpoint atomically, deletes acknowledged segments; replay after reopen yields only the rest', async () => {
    const dir = tempDir()
    const wal = await openWal(dir, 'batch', { segmentBytes: 250 })
    for (let i = 1; i <= 10; i++) await wal.append([w(`k${i}`, `v${i}`.padEnd(60, '.'))])
    const before = segments(dir)
    expect(before.length).toBeGreaterThanOrEqual(4)
    await wal.ack(6)
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint'), 'utf8'))).toEqual({ version: 1, acked: 6 })
    expect(existsSync(join(dir, 'checkpoint.tmp'))).toBe(false)
    const after = segments(dir)
    expect(after.length).toBeLessThan(before.length)
    // Every remaining segment still holds a record past 6; the first starts at or before 7.
    expect(Number(after[0]?.slice(4, 20))).toBeLessThanOrEqual(7)
    await wal.close()

    const again = await openWal(dir, 'batch', { segmentBytes: 250 })
    expect(again.ackedSeq).toBe(6)
    expect((await collect(again.replay())).map((r) => r.seq)).toEqual([7, 8, 9, 10])
    await again.ack(10)
    expect(segments(dir)).toEqual([])
    await again.close()

    const third = await openWal(dir)
    expect(await collect(third.replay())).toEqual([])
    expect(await third.append([w('k11', 'v')])).toBe(11) // numbering survives an empty log
    await third.ack(3) // acks never go backwards
    expect(third.ackedSeq).toBe(10)
  })

  it('a fully acknowledged active segment is retired once it holds 1 MiB; a small one stays (and goes at close)', async () => {
    const dir = tempDir()
    const wal = await openWal(dir, 'batch')
    for (let i = 0; i < 3; i++) await wal.append([w(`k${i}`, 'v')])
    await wal.ack(3)
    expect(segments(dir)).toHaveLength(1) // 3 small records: kept open for more
    for (let i = 0; i < 12; i++) await wal.append([w(`m${i}`, Buffer.alloc(100_000, i))])
    expect(segments(dir)).toHaveLength(1)
    await wal.ack(wal.nextSeq - 1)
    expect(segments(dir)).toEqual([])
    await wal.append([w('n', 'v')]) // a new segment
    expect(segments(dir)).toHaveLength(1)
    await wal.ack(wal.nextSeq - 1)
    await wal.close()
    expect(segments(dir)).toEqual([])
  })

  for (const fsync of ['always', 'batch', 'none'] as const) {
    it(`fsync '${fsync}': an append resolves only once its record is in the file; concurrent appends are numbered in call order`, async () => {
      const dir = tempDir()
      const wal = await openWal(dir, fsync)
      const seq = await wal.append([w('first', 'on disk')])
      const file = join(dir, segments(dir)[0] as string)
      const onDisk = scanSegment(readFileSync(file), 1, true)
      expect(onDisk.damage).toBeUndefined()
      expect(onDisk.records.map((r) => [r.seq, r.writes[0]?.key, Buffer.from(r.writes[0]?.bytes ?? []).toString()])).toEqual([[seq, 'first', 'on disk']])

      // Twenty appends in one tick: each resolves when its record is in the file, numbered in call order.
      const sizes: number[] = []
      const seqs = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          wal.append([w(`k${i}`, `v${i}`)]).then((s) => {
            sizes.push(statSync(file).size)
            return s
          }),
        ),
      )
      expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 2))
      const recs = scanSegment(readFileSync(file), 1, true).records
      expect(recs.map((r) => r.writes[0]?.key)).toEqual(['first', ...Array.from({ length: 20 }, (_, i) => `k${i}`)])
      // When each append resolved, the file already held its record.
      const ends = recordOffsets(file).slice(1).concat(statSync(file).size).slice(1)
      sizes.forEach((s, i) => expect(s).toBeGreaterThanOrEqual(ends[i] as number))
    })
  }

  it('one process per directory: a second open is refused until close; a lock left by a dead process is taken over', async () => {
    const dir = tempDir()
    const wal = await openWal(dir)
    await expect(WriteAheadLog.open(dir, { fsync: 'batch' })).rejects.toMatchObject({ code: 'E_INVALID_OPTION', message: expect.stringMatching(/already open in this process/) })
    await wal.close()
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    writeFileSync(join(dir, 'lock'), `${dead}\n`)
    const again = await openWal(dir)
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid))
    await again.close()
    expect(existsSync(join(dir, 'lock'))).toBe(false)
    // A live foreign process holds it: refused, with its pid.
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`)
    await expect(WriteAheadLog.open(dir, { fsync: 'batch' })).rejects.toThrow(new RegExp(`in use by process ${process.ppid}`))
  })

  it('rejects bad writes and options with typed errors', async () => {
    const dir = tempDir()
    await expect(WriteAheadLog.open(dir, { fsync: 'sometimes' as FsyncPolicy })).rejects.toMatchObject({ code: 'E_INVALID_OPTION', message: `fsync is 'always', 'batch' or 'none' (got "sometimes").` })
    const wal = await openWal(dir)
    await expect(wal.append([{ key: 'k', bytes: 'str' as unknown as Buffer, px: undefined }])).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    await expect(wal.append([w('k', 'v', -5)])).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    expect(await wal.append([w('k', 'v')])).toBe(1) // a rejected append takes no sequence number
  })
})

// ------------------------------------------------------------------ WriteBehind

/** A flush target that records every batch it is given (and can be made to fail or stall). */
class Target {
  batches: TierWrite[][] = []
  attempts: number[] = []
  failures = 0
  gate: Promise<void> | undefined
  flush = async (writes: TierWrite[]): Promise<void> => {
    this.attempts.push(performance.now())
    if (this.gate) await this.gate
    if (this.failures > 0) {
      this.failures--
      throw new Error('flush failed on purpose')
    }
    this.batches.push(writes)
  }
  get flat(): TierWrite[] {
    return this.batches.flat()
  }
}

async function openWb(dir: string, target: Target, extra: Partial<Parameters<typeof WriteBehind.open>[0]> = {}): Promise<WriteBehind> {
  const wb = await WriteBehind.open({ dir, flush: target.flush, ...extra })
  opened.push(wb)
  return wb
}

const until = async (ok: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('WriteBehind', () => {
  it('keeps the order of each key across batches and flushes everything (random workload, concurrent enqueues)', async () => {
    const target = new Target()
    const wb = await openWb(tempDir(), target, { batchSize: 37, flushIntervalMs: 2 })
    const keys = Array.from({ length: 20 }, (_, i) => `key${i}`)
    let n = 0
    const lastOf = new Map<string, number>()
    const pending: Promise<void>[] = []
    for (let round = 0; round < 100; round++) {
      const batch: TierWrite[] = []
      for (let j = 0; j < 1 + (round % 7); j++) {
        const key = keys[(round * 31 + j * 17) % keys.length] as string
        batch.push(w(key, String(n)))
        lastOf.set(key, n++)
      }
      pending.push(wb.enqueue(batch))
      if (round % 10 === 9) await Promise.all(pending.splice(0))
    }
    await Promise.all(pending)
    await wb.drain()
    expect(wb.depth).toBe(0)
    // Per key: values reach flush in increasing enqueue order, and the last one is the last enqueued.
    const seen = new Map<string, number>()
    for (const b of target.batches) {
      expect(b.length).toBeLessThanOrEqual(37)
      expect(new Set(b.map((x) => x.key)).size).toBe(b.length) // coalesced: one write per key per batch
      for (const x of b) {
        const v = Number(Buffer.from(x.bytes).toString())
        expect(v).toBeGreaterThan(seen.get(x.key) ?? -1)
        seen.set(x.key, v)
      }
    }
    expect(Object.fromEntries(seen)).toEqual(Object.fromEntries(lastOf))
    const s = wb.stats()
    expect(s.flushed).toBe(n)
    expect(s.flushed - s.coalesced).toBe(target.flat.length)
    expect(s.retries).toBe(0)
  })

  it('coalesces repeated keys in a batch: only the last write of each key, in place', async () => {
    const target = new Target()
    const wb = await openWb(tempDir(), target, { flushIntervalMs: 10_000 })
    await wb.enqueue([w('a', '1'), w('b', '1', 5000), w('a', '2')])
    await wb.enqueue([w('c', '1'), w('a', '3'), w('b', '2')])
    await wb.drain()
    expect(target.batches).toHaveLength(1)
    expect(plain(target.flat).map((x) => [x.key, Buffer.from(x.bytes, 'hex').toString()])).toEqual([
      ['c', '1'],
      ['a', '3'],
      ['b', '2'],
    ])
    expect(wb.stats()).toMatchObject({ flushed: 6, coalesced: 3, batches: 1 })
  })

  it('retries a failing flush with exponential backoff until it succeeds, never dropping or reordering writes', async () => {
    const target = new Target()
    target.failures = 4
    const errors: Error[] = []
    const wb = await openWb(tempDir(), target, { flushIntervalMs: 0, retry: { baseMs: 20, maxMs: 80 }, onError: (e) => errors.push(e) })
    await wb.enqueue([w('k', 'first')])
    await until(() => target.attempts.length >= 2)
    await wb.enqueue([w('k', 'second'), w('j', 'x')]) // arrives while the first batch is being retried
    await wb.drain()
    // 4 failures + the success of batch 1 (+ batch 2 when it was not merged).
    expect(target.attempts.length).toBeGreaterThanOrEqual(5)
    expect(wb.stats()).toMatchObject({ retries: 4, depth: 0 })
    expect(wb.stats().lastError?.message).toBe('flush failed on purpose')
    expect(errors).toHaveLength(4)
    // Backoff: delays of at least half of 20, 40, 80, 80 ms (jitter keeps 50–100%).
    const gaps = target.attempts.slice(1, 5).map((t, i) => t - (target.attempts[i] as number))
    ;[10, 20, 40, 40].forEach((min, i) => expect(gaps[i]).toBeGreaterThanOrEqual(min - 2))
    expect(plain(target.flat).map((x) => `${x.key}=${Buffer.from(x.bytes, 'hex').toString()}`)).toEqual(['k=first', 'k=second', 'j=x'])
  })

  it('bounded queue: past maxQueue enqueue rejects with E_QUEUE_FULL and appends nothing to the log', async () => {
    const target = new Target()
    let release!: () => void
    target.gate = new Promise<void>((r) => (release = r))
    const wb = await openWb(tempDir(), target, { maxQueue: 10, flushIntervalMs: 0 })
    await wb.enqueue(Array.from({ length: 6 }, (_, i) => w(`a${i}`, 'v')))
    await wb.enqueue(Array.from({ length: 4 }, (_, i) => w(`b${i}`, 'v')))
    expect(wb.depth).toBe(10)
    const seqBefore = wb.wal.nextSeq
    const file = wb.wal.segmentFiles.at(-1) as string
    const sizeBefore = statSync(file).size
    const err = await wb.enqueue([w('c', 'v')]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(QueueFullError)
    expect(err).toMatchObject({ code: 'E_QUEUE_FULL' })
    expect((err as Error).message).toMatch(/raise maxQueue or slow down/i)
    expect(wb.wal.nextSeq).toBe(seqBefore)
    expect(statSync(file).size).toBe(sizeBefore)
    expect(wb.depth).toBe(10)
    release()
    target.gate = undefined
    await wb.drain()
    await wb.enqueue([w('c', 'v')]) // room again
    await wb.drain()
    expect(target.flat.map((x) => x.key)).toEqual([...Array.from({ length: 6 }, (_, i) => `a${i}`), ...Array.from({ length: 4 }, (_, i) => `b${i}`), 'c'])
  })

  it('drain waits for the flush; close drains, then refuses writes with E_CLOSED', async () => {
    const target = new Target()
    const wb = await openWb(tempDir(), target, { flushIntervalMs: 10_000 }) // only drain/close make it flush early
    await wb.enqueue([w('a', '1')])
    expect(target.batches).toHaveLength(0)
    await wb.drain()
    expect(target.flat.map((x) => x.key)).toEqual(['a'])
    const p = wb.enqueue([w('b', '2')]) // still being appended when close starts
    await wb.close()
    await p
    expect(target.flat.map((x) => x.key)).toEqual(['a', 'b'])
    await expect(wb.enqueue([w('c', '3')])).rejects.toMatchObject({ code: 'E_CLOSED' })
    expect(segments(wb.wal.dir)).toEqual([]) // everything acknowledged, nothing left to replay
  })

  it('close with a timeout leaves unflushed writes in the log; the next open replays them through flush before it resolves', async () => {
    const dir = tempDir()
    const failing = new Target()
    failing.failures = Infinity
    const wb = await openWb(dir, failing, { flushIntervalMs: 0, retry: { baseMs: 5, maxMs: 20 }, onError: () => {} })
    await wb.enqueue([w('x', '1', 60_000), w('y', '1')])
    await wb.enqueue([w('x', '2', 60_000)])
    await until(() => failing.attempts.length >= 2)
    const started = performance.now()
    await wb.close({ timeoutMs: 100 })
    expect(performance.now() - started).toBeLessThan(1000)
    expect(failing.batches).toHaveLength(0)

    await new Promise((r) => setTimeout(r, 30))
    const target = new Target()
    const again = await openWb(dir, target)
    // Flushed before open resolved, in order, coalesced, with TTLs shortened by the wait.
    expect(plain(target.flat).map((x) => [x.key, Buffer.from(x.bytes, 'hex').toString()])).toEqual([
      ['y', '1'],
      ['x', '2'],
    ])
    const px = target.flat.find((x) => x.key === 'x')?.px as number
    expect(px).toBeLessThanOrEqual(60_000 - 100)
    expect(px).toBeGreaterThan(50_000)
    expect(again.stats()).toMatchObject({ replayed: 3, depth: 0 })
    await again.close()
    expect(await collect((await openWal(dir)).replay())).toEqual([])
  })

  it('open with a signal gives up on a replay that cannot be flushed and leaves it in the log', async () => {
    const dir = tempDir()
    const stuck = new Target()
    stuck.gate = new Promise(() => {}) // a flush that never returns
    const wb = await openWb(dir, stuck, { flushIntervalMs: 0 })
    await wb.enqueue([w('k', 'v')])
    await wb.close({ timeoutMs: 0 })
    const failing = new Target()
    failing.failures = Infinity
    await expect(WriteBehind.open({ dir, flush: failing.flush, retry: { baseMs: 5 }, signal: AbortSignal.timeout(100), onError: () => {} })).rejects.toMatchObject({ name: 'TimeoutError' })
    expect(failing.attempts.length).toBeGreaterThan(1)
    const target = new Target()
    await openWb(dir, target)
    expect(target.flat.map((x) => x.key)).toEqual(['k'])
  })

  it('rejects bad options with E_INVALID_OPTION', async () => {
    const dir = tempDir()
    const flush = async (): Promise<void> => {}
    for (const bad of [{ batchSize: 0 }, { maxQueue: 1.5 }, { flushIntervalMs: -1 }, { fsync: 'often' }, { retry: { baseMs: 100, maxMs: 10 } }, { retry: { baseMs: 0 } }]) {
      await expect(WriteBehind.open({ dir, flush, ...(bad as object) })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    }
    await expect(WriteBehind.open({ dir } as never)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' })
    // The one fsync check (src/wal/fsync.ts), named as the engine's option.
    await expect(WriteBehind.open({ dir, flush, fsync: 'often' as FsyncPolicy })).rejects.toMatchObject({ message: `fsync is 'always', 'batch' or 'none' (got "often").` })
  })
})

describe('checkFsync', () => {
  it('accepts the three policies and refuses anything else with E_INVALID_OPTION naming the option', () => {
    for (const p of ['always', 'batch', 'none'] as const) expect(checkFsync(p)).toBe(p)
    for (const bad of ['ALWAYS', '', undefined, null, 1, ['batch']]) {
      expect(() => checkFsync(bad)).toThrow(InvalidOptionError)
      expect(() => checkFsync(bad)).toThrow(/^writeBehind\.fsync is 'always', 'batch' or 'none' \(got /)
    }
    expect(() => checkFsync('x'.repeat(500), 'fsync')).toThrow(/^fsync is .*\(500 characters\)\)\.$/)
  })
})
