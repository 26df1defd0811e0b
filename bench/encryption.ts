// What authenticated encryption (AES-256-GCM, `encryption: { keys }`) costs a get
// and a set, against the same cache without it, in one run on one Redis.
//
// Per value size (a ~150-byte object, and a 100 KiB value whose 100 KiB string is
// random base64, so LZ4 cannot shrink it) and per operation:
//   - L1-hit get: a cache with its L1, every key read once before (the L1 holds
//     plain envelopes, so the bar is: within 5% of plaintext);
//   - L2 get: `l1: false`, every get reads Redis and opens the sealed bytes;
//   - set: write-through to Redis (and the L1), sealing every write.
// Plain and encrypted tasks of one scenario run in the same tinybench instance,
// one after the other (first one, then the other, alternating), in many short
// rounds (a busy shared machine drifts over seconds: long blocks measured the
// drift); the ratio printed is the median of the per-round ratios of median
// ops/s (encrypted / plain: 1.00 = free, 0.50 = half the throughput).
//
// Alone: node --import tsx bench/encryption.ts [redis-url]   (default redis://127.0.0.1:6379,
// or NEARCACHE_BENCH_REDIS). It writes only under a fresh namespace and clears it after.
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { Bench } from 'tinybench'
import { encodeEnvelope, CODEC_MSGPACKR } from '../src/codec/envelope.js'
import { createCache } from '../src/index.js'
import { EntryCipher } from '../src/security/entry_cipher.js'
import { Keyring } from '../src/security/keyring.js'
import { initHash } from '../wasm/hash.js'
import type { CacheOptions, NearCache } from '../src/index.js'
import { item } from './fixtures.js'
import { figure } from './report.js'
import type { TaskFigure } from './report.js'

export const SUITE = 'encryption'
const ROUNDS = 11
export const SETTINGS = { rounds: ROUNDS, time: 200, warmupTime: 50, warmupIterations: 8, algorithm: 'AES-256-GCM, per-process HKDF subkey, random 96-bit nonce' }

interface Size {
  name: string
  keys: number
  value: (i: number) => unknown
  /** Operations per tinybench iteration, per operation kind (amortizes the harness). */
  per: Record<Op, number>
}
type Op = 'L1-hit get' | 'L2 get (l1: false)' | 'set'
const OPS: Op[] = ['L1-hit get', 'L2 get (l1: false)', 'set']
const bigString = randomBytes(75 * 1024).toString('base64') // 100 KiB of text
const SIZES: Size[] = [
  { name: '150 B object', keys: 1000, value: (i) => item(i), per: { 'L1-hit get': 1000, 'L2 get (l1: false)': 20, set: 20 } },
  { name: '100 KiB value', keys: 50, value: (i) => ({ id: i, blob: bigString }), per: { 'L1-hit get': 20, 'L2 get (l1: false)': 5, set: 5 } },
]

let sink: unknown

interface Row {
  size: string
  op: Op
  plainOpsPerSec: number
  encryptedOpsPerSec: number
  ratio: number
}

async function scenario(url: string, size: Size, op: Op, ns: string): Promise<{ plain: TaskFigure[]; enc: TaskFigure[] }> {
  const keyring = { keys: [{ id: 1, key: randomBytes(32) }] }
  const keys = Array.from({ length: size.keys }, (_, i) => `${size.name.replace(/\W/g, '')}:${i}`)
  const base: CacheOptions = { redis: url, namespace: ns, invalidation: false, l1: op === 'L2 get (l1: false)' ? false : { maxBytes: '256mb' } }
  const caches: Record<'plain' | 'enc', NearCache> = {
    plain: await createCache({ ...base, namespace: `${ns}-plain` }),
    enc: await createCache({ ...base, namespace: `${ns}-enc`, encryption: keyring }),
  }
  const out = { plain: [] as TaskFigure[], enc: [] as TaskFigure[] }
  try {
    for (const c of Object.values(caches)) {
      await c.setMany(keys.map((key, i) => ({ key, value: size.value(i) })))
      for (const k of keys) if ((await c.get(k)) === undefined) throw new Error(`${k} missed after the preload`)
    }
    for (let round = 0; round < ROUNDS; round++) {
      const bench = new Bench({ name: `${size.name} ${op}`, time: SETTINGS.time, warmupTime: SETTINGS.warmupTime, warmupIterations: SETTINGS.warmupIterations, timestampProvider: 'hrtimeNow', warmup: true, throws: true })
      // Alternate which runs first, so drift on a busy machine does not favour one.
      const order: ('plain' | 'enc')[] = round % 2 === 0 ? ['plain', 'enc'] : ['enc', 'plain']
      for (const mode of order) {
        const c = caches[mode]
        let i = 0
        const per = size.per[op]
        bench.add(mode, async () => {
          for (let j = 0; j < per; j++) {
            const idx = i++ % size.keys
            const k = keys[idx] as string
            if (op === 'set') await c.set(k, size.value(idx))
            else {
              const v = await c.get(k)
              if (v === undefined) throw new Error(`${mode}: ${k} missed`)
              sink = v
            }
          }
        })
      }
      await bench.run()
      for (const t of bench.tasks) out[t.name as 'plain' | 'enc'].push(figure(`${size.name} ${op}`, t, size.per[op]))
    }
  } finally {
    for (const c of Object.values(caches)) {
      await c.clear().catch(() => {})
      await c.close()
    }
  }
  return out
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

export async function run(url: string): Promise<Row[]> {
  const ns = `bench-enc-${randomBytes(3).toString('hex')}`
  const rows: Row[] = []
  for (const size of SIZES) {
    for (const op of OPS) {
      const { plain, enc } = await scenario(url, size, op, ns)
      const ratios = plain.map((p, r) => (enc[r] as TaskFigure).opsPerSec / p.opsPerSec)
      rows.push({ size: size.name, op, plainOpsPerSec: median(plain.map((f) => f.opsPerSec)), encryptedOpsPerSec: median(enc.map((f) => f.opsPerSec)), ratio: median(ratios) })
    }
  }
  if (sink === Symbol.for('never')) console.log(sink)
  return rows
}

/** The cipher alone (no Redis, no cache): median µs per seal and per open of a plain envelope of `bytes` payload bytes. */
export async function cipherCost(): Promise<{ payload: string; sealUs: number; openUs: number }[]> {
  await initHash()
  const cipher = new EntryCipher(Keyring.from([{ id: 1, key: randomBytes(32) }]), false)
  const out = []
  for (const [payload, bytes] of [['150 B', 150], ['100 KiB', 100 * 1024]] as const) {
    const env = encodeEnvelope(randomBytes(bytes), { createdAt: 1, expiresAt: 0, softExpiresAt: 0, staleUntil: 0, tags: undefined, compressed: false, codec: CODEC_MSGPACKR })
    const sealed = cipher.seal('bench:k', env)
    const bench = new Bench({ name: `cipher ${payload}`, time: 500, warmupTime: 100, timestampProvider: 'hrtimeNow', throws: true })
    bench.add('seal', () => {
      sink = cipher.seal('bench:k', env)
    })
    bench.add('open', () => {
      sink = cipher.open('bench:k', sealed)
    })
    await bench.run()
    const us = (name: string) => (figure(payload, bench.tasks.find((t) => t.name === name)!, 1).iterationP50Ms * 1000)
    out.push({ payload, sealUs: us('seal'), openUs: us('open') })
  }
  return out
}

export function print(rows: Row[]): void {
  const int = (n: number) => Math.round(n).toLocaleString('en-US')
  console.table(
    rows.map((r) => ({
      value: r.size,
      operation: r.op,
      'plain median ops/s': int(r.plainOpsPerSec),
      'encrypted median ops/s': int(r.encryptedOpsPerSec),
      'encrypted / plain': r.ratio.toFixed(3),
    })),
  )
  for (const r of rows.filter((x) => x.op === 'L1-hit get')) {
    console.log(`${r.size} L1-hit get: encrypted at ${(r.ratio * 100).toFixed(1)}% of plaintext throughput (bar: >= 95%): ${r.ratio >= 0.95 ? 'within' : 'OUTSIDE'} the bar`)
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.argv[2] ?? process.env.NEARCACHE_BENCH_REDIS ?? 'redis://127.0.0.1:6379'
  console.log(`encryption bench against ${url.replace(/\/\/[^@]*@/, '//***@')}, ${ROUNDS} rounds, node ${process.version}`)
  print(await run(url))
  console.log('The cipher alone (median µs per call, one 32-byte key, AAD = key + header):')
  console.table((await cipherCost()).map((c) => ({ payload: c.payload, 'seal µs': c.sealUs.toFixed(2), 'open µs': c.openUs.toFixed(2) })))
}
