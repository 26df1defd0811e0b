// How long can one invalidation message block a receiver? Issue 10's bound: the
// worst message that passes validation, on a 64 MB L1 holding 100,000 entries,
// under 20 ms. Also: what a prefix invalidation costs by table size, before
// (deletePrefixes: a sweep of the whole table) and now (invalidateRoots: O(1)),
// and what the old 282 KB / 20,000-prefix message costs now (rejected).
//
// Runs the subscriber's real message handler on a real table (the Redis client
// is only there to start the bus). Needs a Redis at NEARCACHE_REDIS_URL or
// 127.0.0.1:6379.   node --import tsx bench/bus_worst_message.ts
import { Redis } from 'ioredis'
import { initHash } from '../wasm/hash.js'
import { SharedTable } from '../src/l1/shared_table.js'
import { MAX_KEYS, MAX_MESSAGE_CHARS, MAX_PREFIXES, PROTOCOL_VERSION } from '../src/l2/bus_protocol.js'
import { InvalidationBus } from '../src/l2/invalidation_bus.js'

const ENTRIES = 100_000
const ROUNDS = 20
const root = 'bench'
const value = new Uint8Array(120).fill(7)

function fill(t: SharedTable, n: number, key: (i: number) => string): void {
  const now = Date.now()
  for (let i = 0; i < n; i++) t.put(key(i), value, 0, now)
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b)
  const q = (p: number) => (s[Math.min(s.length - 1, Math.floor(s.length * p))] as number).toFixed(2)
  return `median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${(s.at(-1) as number).toFixed(2)} ms`
}

async function main(): Promise<void> {
  await initHash()
  const client = new Redis(process.env.NEARCACHE_REDIS_URL ?? 'redis://127.0.0.1:6379')

  // 1. The worst valid message: MAX_KEYS keys, as long as the text limit allows, all present in L1, plus MAX_PREFIXES prefixes.
  const table = SharedTable.create(64 * 1024 * 1024)
  const pad = 'x'.repeat(Math.floor((MAX_MESSAGE_CHARS - 20_000) / MAX_KEYS) - 40)
  const longKey = (i: number) => `${root}:${pad}:${i}`
  fill(table, ENTRIES - MAX_KEYS, (i) => `${root}:k:${i}`)
  const bus = await InvalidationBus.start(client, root, table, { legacyChannel: false, onError: () => {} })
  const handle = (bus as unknown as { onMessage(ch: string, text: string): void }).onMessage.bind(bus)
  const times: number[] = []
  let liveBefore = 0
  for (let r = 0; r < ROUNDS; r++) {
    // Every entry live again (the previous message's prefixes dropped the root).
    fill(table, ENTRIES - MAX_KEYS, (i) => `${root}:k:${i}`)
    fill(table, MAX_KEYS, longKey)
    const live = table.usage().entries
    const text = JSON.stringify({
      v: PROTOCOL_VERSION,
      o: 'bench-publisher',
      s: r,
      k: Array.from({ length: MAX_KEYS }, (_, i) => longKey(i)),
      p: Array.from({ length: MAX_PREFIXES }, (_, i) => `${root}:p${i}:`),
    })
    if (r === 0) console.log(`worst valid message: ${MAX_KEYS} keys of ${longKey(0).length} chars + ${MAX_PREFIXES} prefixes, ${(text.length / 1024).toFixed(0)} KiB`)
    const t = performance.now()
    handle(bus.channel, text)
    times.push(performance.now() - t)
    liveBefore = live
  }
  if (bus.received !== ROUNDS || bus.rejected !== 0) throw new Error(`expected ${ROUNDS} messages applied, got ${bus.received} (${bus.rejected} rejected)`)
  console.log(`  64 MB L1, ${ENTRIES} entries written (${liveBefore} kept by the table): one message blocks the receiver ${stats(times)} (goal < 20 ms)`)

  // 2. The 282 KB message with 20,000 prefixes (over a second before): now refused before any work.
  const flood = JSON.stringify({ v: PROTOCOL_VERSION, o: 'flood', s: 0, p: Array.from({ length: 20_000 }, (_, i) => `${root}:${i}:`) })
  const legacyFlood = JSON.stringify({ o: 'flood', s: 0, p: Array.from({ length: 20_000 }, (_, i) => `${root}:${i}:`) })
  const rejected: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now()
    handle(bus.channel, flood)
    rejected.push(performance.now() - t)
  }
  console.log(`  ${(flood.length / 1024).toFixed(0)} KiB message with 20,000 prefixes: ${stats(rejected)} (rejected: ${bus.rejected})`)
  await bus.close()
  const legacyBus = await InvalidationBus.start(client, root, table, { legacyChannel: true, onError: () => {} })
  const legacyHandle = (legacyBus as unknown as { onMessage(ch: string, text: string): void }).onMessage.bind(legacyBus)
  const legacyTimes: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now()
    legacyHandle('__nc|inv', legacyFlood.replace('"s":0', `"s":${r}`))
    legacyTimes.push(performance.now() - t)
  }
  console.log(`  the same in the legacy format on '__nc|inv' (over the limits: not read, the root is dropped in O(1)): ${stats(legacyTimes)}`)
  await legacyBus.close()
  client.disconnect()

  // 3. One prefix invalidation by table size: the sweep (before) against the root generation (now).
  for (const mb of [64, 512, 2047]) {
    const t = SharedTable.create(mb * 1024 * 1024)
    fill(t, ENTRIES, (i) => `${root}:k:${i}`)
    const sweep: number[] = []
    const bump: number[] = []
    for (let r = 0; r < 10; r++) {
      let s = performance.now()
      t.deletePrefixes([`${root}:nothing:`])
      sweep.push(performance.now() - s)
      s = performance.now()
      t.invalidateRoots([`${root}:nothing:`])
      bump.push(performance.now() - s)
    }
    console.log(`  ${mb} MB L1, ${ENTRIES} entries: prefix sweep (before) ${stats(sweep)}; root generation (now) ${stats(bump)}`)
  }
}

await main()
