import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { FAST_WRITES, finalValueOf, keyOf, pxOf, writeStream } from '../fixtures/write_behind_child.js'

/**
 * A process acknowledges N writes through a WriteBehind (the first FAST_WRITES are
 * flushed and their flush checkpointed; then the flush to Redis is slowed on
 * purpose) and is killed with SIGKILL the moment the last one is acknowledged,
 * before they reach Redis. A second process opens the same log: every acknowledged
 * write must end up in Redis, last write of each key winning, and only what the
 * checkpoint did not cover is replayed.
 */
const N = 5000
const CHILD = fileURLToPath(new URL('../fixtures/write_behind_child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Run {
  lines: string[]
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

/** Runs the child; `onLine` may kill it. */
function runChild(args: string[], onLine?: (line: string, kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    const lines: string[] = []
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const rl = createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      lines.push(line)
      onLine?.(line, () => child.kill('SIGKILL'))
    })
    child.once('error', reject)
    // 'close' comes after the exit and after stdout and stderr have ended.
    child.once('close', (code, signal) => resolve({ lines, code, signal, stderr }))
  })
}

const dirs: string[] = []
const redis = new Redis(inject('redisUrl'))
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  await redis.quit()
})

describe.each(['always', 'batch', 'none'] as const)("write-behind crash and replay (fsync '%s')", (fsync) => {
  it(`every acknowledged write of ${N} reaches Redis after a SIGKILL before the flush`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-wb-crash-'))
    dirs.push(dir)
    const id = randomUUID()
    const keys = Array.from({ length: N }, (_, i) => keyOf(id, i))

    // 1. Acknowledge everything, then die at once.
    const t0 = performance.now()
    let total = -1
    let ackedAtKill = -1
    let killedAt = 0
    const first = await runChild([dir, inject('redisUrl'), String(N), fsync, 'write', id], (line, kill) => {
      const [word, num] = line.split(' ')
      if (word === 'TOTAL') total = Number(num)
      if (word === 'ACKED' && Number(num) === total) {
        ackedAtKill = Number(num)
        killedAt = performance.now()
        kill()
      }
    })
    expect(first.signal, first.stderr).toBe('SIGKILL')
    expect(total).toBe(N + Math.floor((N - 1 - 100) / 10) + 1)
    expect(ackedAtKill).toBe(total)
    // What reached Redis before the kill (a pipeline already sent may still land: counted after exit).
    const before = (await redis.mget(keys)).filter((v) => v !== null).length
    expect(before).toBeLessThan(N)
    expect(before).toBeGreaterThanOrEqual(FAST_WRITES * 0.9) // the fast phase's keys (a few were written twice)
    const segs = readdirSync(dir).filter((n) => n.endsWith('.log'))
    expect(segs.length).toBeGreaterThan(0)

    // 2. A new process on the same directory: open replays the log into Redis.
    const t1 = performance.now()
    const second = await runChild([dir, inject('redisUrl'), String(N), fsync, 'replay', id])
    const replayMs = performance.now() - t1
    expect(second.code, second.stderr).toBe(0)
    const line = second.lines.find((l) => l.startsWith('REPLAYED ')) as string
    const stats = JSON.parse(line.slice('REPLAYED '.length)) as { replayed: number; flushed: number; walCorruptions: number; tornTailBytes: number; retries: number; depth: number; coalesced: number; openMs: number }
    expect(stats.walCorruptions).toBe(0)
    expect(stats.depth).toBe(0)
    // Exactly the writes after the checkpoint (the fast phase is acknowledged, the rest is not).
    expect(stats.replayed).toBe(total - FAST_WRITES)

    // 3. Every key holds the bytes of its last acknowledged write, with its TTL.
    const values = await redis.mgetBuffer(keys)
    const wrong = values.map((v, i) => (v !== null && v.equals(finalValueOf(id, i, N)) ? -1 : i)).filter((i) => i >= 0)
    expect(wrong.slice(0, 10), `${wrong.length} keys missing or wrong`).toEqual([])
    const ttls = await redis.pipeline(keys.slice(0, 300).map((k) => ['pttl', k])).exec()
    ttls?.forEach(([, ttl], i) => {
      if (pxOf(i) === undefined) expect(ttl).toBe(-1)
      else expect(ttl as number).toBeGreaterThan(3_600_000 - 120_000)
    })
    // Everything is acknowledged: no segment left to replay.
    expect(readdirSync(dir).filter((n) => n.endsWith('.log'))).toEqual([])

    console.log(
      `[write-behind crash, fsync '${fsync}'] ${total} writes acknowledged in ${(killedAt - t0).toFixed(0)} ms (child start included); ` +
        `${before}/${N} keys in Redis at SIGKILL; open replayed ${stats.replayed} writes (${stats.coalesced} coalesced) into Redis in ` +
        `${stats.openMs.toFixed(0)} ms (${replayMs.toFixed(0)} ms with process start), torn tail ${stats.tornTailBytes} bytes`,
    )
    await redis.del(...keys)
  })
})

describe('write-behind killed mid-append', () => {
  it("fsync 'batch': every write acknowledged before the SIGKILL reaches Redis, in its last acknowledged version or a later one", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-wb-crash-'))
    dirs.push(dir)
    const id = randomUUID()
    let acked = -1
    const first = await runChild([dir, inject('redisUrl'), String(N), 'batch', 'write', id], (line, kill) => {
      const [word, num] = line.split(' ')
      // Past the checkpointed fast phase, with appends still in flight.
      if (word === 'ACKED' && Number(num) >= 3000 && acked < 0) {
        acked = Number(num)
        kill()
      }
    })
    expect(first.signal, first.stderr).toBe('SIGKILL')
    expect(acked).toBeGreaterThanOrEqual(3000)

    const second = await runChild([dir, inject('redisUrl'), String(N), 'batch', 'replay', id])
    expect(second.code, second.stderr).toBe(0)
    const stats = JSON.parse((second.lines.find((l) => l.startsWith('REPLAYED ')) as string).slice('REPLAYED '.length)) as { replayed: number; walCorruptions: number; tornTailBytes: number }
    expect(stats.walCorruptions).toBe(0)
    expect(stats.replayed).toBeGreaterThanOrEqual(acked - FAST_WRITES)

    // Chunks are acknowledged in stream order, so the acknowledged writes are the first `acked`
    // of the stream. A key must hold its last acknowledged version, or a later one (written to
    // the log but not yet acknowledged when the process died).
    const stream = writeStream(id, N)
    const allowed = new Map<string, Buffer[]>()
    stream.forEach((w, pos) => {
      const list = allowed.get(w.key) ?? []
      if (pos < acked) list.splice(0, list.length, w.bytes)
      else if (list.length > 0) list.push(w.bytes)
      allowed.set(w.key, list)
    })
    const keys = [...allowed.keys()].filter((k) => (allowed.get(k) as Buffer[]).length > 0)
    const values = await redis.mgetBuffer(keys)
    const bad = keys.filter((k, i) => !(allowed.get(k) as Buffer[]).some((b) => values[i]?.equals(b)))
    expect(bad.slice(0, 10), `${bad.length} of ${keys.length} acknowledged keys missing or stale`).toEqual([])
    console.log(`[write-behind killed mid-append] killed at ${acked} acknowledged writes; ${keys.length} acknowledged keys all in Redis; replayed ${stats.replayed}, torn tail ${stats.tornTailBytes} bytes`)
    await redis.del(...Array.from({ length: N }, (_, i) => keyOf(id, i)))
  })
})
