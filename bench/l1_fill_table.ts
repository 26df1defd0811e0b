// The L1 table alone (no async API, no codec), at sizes where the async
// fill-then-read of bench/l1_fill.ts would take too long: write records of 144
// bytes totalling a share of the data area, then look each one up. Found share
// overall and at the worst shard, and the budget the table used (issue 16:
// >= 99.9% found at 50% and 80%, >= 99% at 95%, >= 90% of the budget used when
// filled past it).
//
//   node --import tsx bench/l1_fill_table.ts            (64 MB and 2 GB; ~2 minutes)
//   NEARCACHE_L1_FILL_SIZES=64mb node --import tsx bench/l1_fill_table.ts
import { initHash, murmur3_32 } from '../wasm/hash.js'
import { SharedTable } from '../src/l1/shared_table.js'
import { parseBytes } from '../src/util/units.js'

const SIZES = (process.env.NEARCACHE_L1_FILL_SIZES ?? '64mb,2gb').split(',')
const SHARES = [0.5, 0.8, 0.95, 2]
const te = new TextEncoder()
const value = new Uint8Array(100).fill(7)
const key = (i: number) => `item:${String(i).padStart(9, '0')}`

await initHash()
const rows: Record<string, string | number>[] = []
for (const size of SIZES) {
  for (const share of SHARES) {
    const t = SharedTable.create(parseBytes(size, 'size', 0))
    const shardShift = 32 - Math.log2(t.layout.nShards)
    const probe = `${key(0)}`
    t.put(probe, value, 0, 0)
    const record = t.usage().bytes
    t.take(probe, 0)
    const capacity = t.usage().capacity
    const n = Math.floor((share * capacity) / record)
    const started = performance.now()
    for (let i = 0; i < n; i++) t.put(key(i), value, 0, 0)
    const used = t.usage().bytes
    const written = new Array<number>(t.layout.nShards).fill(0)
    const kept = new Array<number>(t.layout.nShards).fill(0)
    let found = 0
    for (let i = 0; i < n; i++) {
      const k = key(i)
      const b = te.encode(k)
      const s = (murmur3_32(b, b.length) | 0) >>> shardShift
      written[s]!++
      if (t.lookup(k, 0) !== null) {
        kept[s]!++
        found++
      }
    }
    const worst = Math.min(...kept.map((k, s) => k / Math.max(1, written[s] as number)))
    rows.push({
      size,
      written: `${share * 100}% (${n})`,
      'record B': record,
      found: `${((found / n) * 100).toFixed(3)}%`,
      'worst shard': `${(worst * 100).toFixed(3)}%`,
      'budget used': `${((used / capacity) * 100).toFixed(1)}%`,
      'held per MiB': Math.round(found / (capacity / 1024 / 1024)),
      seconds: ((performance.now() - started) / 1000).toFixed(1),
    })
    console.log(rows.at(-1))
  }
}
console.table(rows)
