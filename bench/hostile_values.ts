// What a hostile value planted in Redis costs a reader. Each case plants one
// value with a valid envelope (the xxh32 checksum recomputed, as an attacker who
// can write to the Redis can) under a cache's namespace, then `get`s it
// repeatedly in a fresh child process, and reports per get:
// - peak RSS growth of the worst get (VmHWM after it minus RSS before it, after a
//   GC, the peak reset through /proc/self/clear_refs), so a transient allocation
//   freed before the get returns still counts;
// - event-loop block: the longest gap between two turns of the event loop while
//   the gets ran (a setImmediate chain measures it), and the mean wall time per get.
//
// Cases (the issue's findings):
// - 'lz4 bomb 1 MB': ~1 MB of LZ4 that inflates to 256 MiB;
// - 'claims 512 MiB': a 52-byte payload whose LZ4 header claims 512 MiB;
// - 'empty maps 1 MB': an uncompressed array of 1M empty msgpack maps;
// - 'claims 15 MB': a 59 KB LZ4 payload declaring 15 MB (under the 16 MiB
//   default maxValueBytes): an array of 15M zeros;
// each also with codecWorkers (the worker pool's inflate); and, as a control, an
// honest 1 MB value: what any 1 MB read costs (Redis, checksum, L1 copy).
//
// Goal (issue 10): under 50 MB of RSS and under 50 ms of event-loop block per get.
// Run: node --import tsx bench/hostile_values.ts   (starts its own redis-server)
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import { encodeEnvelope } from '../src/codec/envelope.js'
import { initHash } from '../wasm/hash.js'
import { createCache } from '../src/index.js'
import { startStandalone } from '../test/helpers/redis_servers.js'

const MiB = 1024 * 1024
const GETS = 5

/**
 * An LZ4 block (lz4-napi's format: u32 LE inflated size, then the block) that
 * inflates to `total` bytes: `prefix`, then `fill` repeated. One long match
 * (offset 1) does the repeating: ~1 byte of LZ4 per 255 bytes of output.
 */
export function lz4Run(prefix: Uint8Array, fill: number, total: number): Buffer {
  const literals = Buffer.concat([Buffer.from(prefix), Buffer.from([fill])])
  const tail = 5 // the block ends with literals
  const match = total - literals.length - tail
  if (match < 4) throw new Error('lz4Run: total too small')
  const out: number[] = []
  const lenNibble = (n: number) => Math.min(n, 15)
  const ext = (n: number) => {
    for (; n >= 255; n -= 255) out.push(255)
    out.push(n)
  }
  out.push((lenNibble(literals.length) << 4) | lenNibble(match - 4))
  if (literals.length >= 15) ext(literals.length - 15)
  out.push(...literals, 1, 0)
  if (match - 4 >= 15) ext(match - 4 - 15)
  out.push(tail << 4, fill, fill, fill, fill, fill)
  const head = Buffer.alloc(4)
  head.writeUInt32LE(total)
  return Buffer.concat([head, Buffer.from(out)])
}

/** An LZ4 payload of `bytes` whose header claims `claim`. */
export function lyingLz4(claim: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes, 0x11)
  b.writeUInt32LE(claim, 0)
  return b
}

/** msgpack: an array of `n` copies of one byte (array32 header). */
export function msgpackArrayOf(byte: number, n: number): Buffer {
  return Buffer.concat([arrayHeader(n), Buffer.alloc(n, byte)])
}

/** Envelope bytes around a payload, checksum and all: what an attacker plants (after `await initHash()`). */
export function plant(payload: Uint8Array, compressed: boolean): Buffer {
  return encodeEnvelope(payload, { createdAt: Date.now(), expiresAt: 0, softExpiresAt: 0, staleUntil: 0, tags: undefined, compressed, codec: 0 })
}

/** msgpack array32 header for `n` elements. */
function arrayHeader(n: number): Buffer {
  const head = Buffer.alloc(5)
  head[0] = 0xdd
  head.writeUInt32BE(n, 1)
  return head
}

export const CASES: Record<string, () => Buffer> = {
  'lz4 bomb 1 MB': () => plant(lz4Run(new Uint8Array(0), 0, 256 * MiB), true),
  'claims 512 MiB': () => plant(lyingLz4(512 * MiB, 52), true),
  'empty maps 1 MB': () => plant(msgpackArrayOf(0x80, 1_000_000), false),
  'claims 15 MB': () => plant(lz4Run(arrayHeader(15_000_000 - 5), 0, 15_000_000), true),
  // Not hostile: what any honest 1 MB read costs here (the Redis read, the checksum, the L1 copy).
  'control: honest 1 MB Buffer': () => {
    const bytes = Buffer.alloc(1_000_000)
    for (let i = 0, x = 1; i < bytes.length; i++) bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24
    const head = Buffer.from([0xc6, 0, 0, 0, 0])
    head.writeUInt32BE(bytes.length, 1)
    return plant(Buffer.concat([head, bytes]), false)
  },
}

interface Figures {
  case: string
  workers: boolean
  storedBytes: number
  rssPeakMB: number
  maxBlockMs: number
  meanGetMs: number
  result: string
}

function vmHwmBytes(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

/** Child: get the planted key GETS times; report the figures to the parent. */
async function child(url: string, ns: string, name: string, workers: boolean, storedBytes: number): Promise<void> {
  const cache = await createCache({ redis: url, namespace: ns, ...(workers ? { codecWorkers: { threads: 1, threshold: 1 } } : {}) })
  let errors = 0
  let lastError = ''
  cache.on('error', (e: Error & { code?: string }) => {
    errors++
    lastError = e.code ?? e.message
  })
  await cache.get('warm-up-miss')
  // The longest gap between two turns of the event loop: a chain of setImmediate keeps it turning.
  let last = performance.now()
  let maxBlockMs = 0
  let probing = true
  const probe = () => {
    const now = performance.now()
    maxBlockMs = Math.max(maxBlockMs, now - last)
    last = now
    if (probing) setImmediate(probe)
  }
  let result = ''
  let rssPeak = 0
  let totalMs = 0
  for (let i = 0; i < GETS; i++) {
    globalThis.gc?.()
    writeFileSync('/proc/self/clear_refs', '5') // resets VmHWM (peak RSS) to the current RSS
    const rss0 = process.memoryUsage().rss
    last = performance.now()
    probing = true
    setImmediate(probe)
    const t0 = performance.now()
    try {
      const v = await cache.get(name)
      result = v === undefined ? 'miss' : `value (${typeof v})`
    } catch (e) {
      result = `threw ${(e as { code?: string }).code ?? (e as Error).message.slice(0, 60)}`
    }
    totalMs += performance.now() - t0
    // Let the probe see the rest of this get's block (an L1 hit decodes without leaving the microtask queue).
    await new Promise((r) => setImmediate(r))
    probing = false
    await new Promise((r) => setImmediate(r))
    rssPeak = Math.max(rssPeak, vmHwmBytes() - rss0)
  }
  const meanGetMs = totalMs / GETS
  const figures: Figures = {
    case: name,
    workers,
    storedBytes,
    rssPeakMB: rssPeak / MiB,
    maxBlockMs,
    meanGetMs,
    result: `${result}${errors ? `, ${errors} × ${lastError}` : ''}`,
  }
  process.send?.(figures)
  await cache.close()
}

async function main(): Promise<void> {
  await initHash()
  const server = await startStandalone()
  const redis = new Redis(server.url)
  const ns = `bench-hostile-${process.pid}`
  const rows: Figures[] = []
  try {
    for (const [name, make] of Object.entries(CASES)) {
      const bytes = make()
      await redis.set(`${ns}:${name}`, bytes)
      for (const workers of [false, true]) {
        const proc = fork(fileURLToPath(import.meta.url), ['--child', server.url, ns, name, String(workers), String(bytes.length)], {
          execArgv: ['--import', 'tsx', '--expose-gc'],
        })
        const got = await new Promise<Figures>((resolve, reject) => {
          let figures: Figures | undefined
          proc.on('message', (m) => (figures = m as Figures))
          proc.on('exit', (code, signal) => (figures ? resolve(figures) : reject(new Error(`child for '${name}' exited ${code ?? signal}`))))
        }).catch((err: Error) => ({ case: name, workers, storedBytes: bytes.length, rssPeakMB: NaN, maxBlockMs: NaN, meanGetMs: NaN, result: err.message }))
        rows.push(got)
      }
    }
  } finally {
    redis.disconnect()
    await server.stop()
  }
  console.table(
    rows.map((r) => ({
      case: r.case,
      codecWorkers: r.workers,
      'stored bytes': r.storedBytes,
      'peak RSS growth MB': r.rssPeakMB.toFixed(1),
      'max event-loop block ms': r.maxBlockMs.toFixed(1),
      'mean get ms': r.meanGetMs.toFixed(1),
      result: r.result,
    })),
  )
  const bomb = rows.filter((r) => r.case === 'lz4 bomb 1 MB')
  const ok = bomb.every((r) => r.rssPeakMB < 50 && r.maxBlockMs < 50)
  console.log(`issue 10 goal, the 1 MB LZ4 bomb (< 50 MB RSS, < 50 ms block per get): ${ok ? 'met' : 'NOT met'}`)
}

if (process.argv[2] === '--child') {
  const [, , , url, ns, name, workers, stored] = process.argv
  await child(url as string, ns as string, name as string, workers === 'true', Number(stored))
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await main()
}
