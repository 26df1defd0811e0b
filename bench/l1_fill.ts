// Capacity, not speed: write N small objects into the embedded L1-only cache
// (`redis: false`), then read each one once. How many are still there, and how
// much of its byte budget did the L1 use? Against lru-cache given the same byte
// budget (issue 16).
//
// The budget is the L1's data area (`stats().l1.capacity`); an entry's size is
// its whole record (what `stats().l1.bytes` counts). lru-cache gets the same
// bytes, charged per entry with the same record size nearcache measured for it
// (`sizeCalculation`), so both are asked to hold the same number of entries.
// Fills at 25%, 50%, 100% and 200% of the budget; entries of about 150 bytes.
// "held per MB" is the entries found per MiB of budget.
//
// No Redis needed. Alone: node --import tsx bench/l1_fill.ts
// Bigger tables: NEARCACHE_L1_FILL_SIZES=64mb,2gb (the 2 GB run takes minutes and a large heap:
// node --max-old-space-size=12000); other fills: NEARCACHE_L1_FILL_FILLS=0.5,0.8,0.95.
import { pathToFileURL } from 'node:url'
import { LRUCache } from 'lru-cache'
import { createCache } from '../src/index.js'
import { writeJson } from './results_json.js'

export const SUITE = 'l1_fill'
const SIZES = (process.env.NEARCACHE_L1_FILL_SIZES ?? '64mb').split(',')
const FILLS = (process.env.NEARCACHE_L1_FILL_FILLS ?? '0.25,0.5,1,2').split(',').map(Number)

export const SETTINGS = { sizes: SIZES, fills: FILLS, entry: '{ id, name, email, active } (~150-byte record)' }

// Fixed-width ids, so that every entry's record has the same size as the probe's.
const id = (i: number) => String(i + 1).padStart(8, '0')
const value = (i: number) => ({ id: id(i), name: `user ${id(i)}`, email: `${id(i)}@x.io`, active: i % 2 === 0 })
const key = (i: number) => `user:${id(i)}`

export interface FillRow {
  size: string
  fill: string
  written: number
  recordBytes: number
  ours: { found: number; foundPct: number; usedPct: number; heldPerMiB: number }
  lru: { found: number; foundPct: number; heldPerMiB: number }
  ratio: number
}

async function one(size: string, fill: number): Promise<FillRow> {
  const cache = await createCache({ redis: false, l1: { maxBytes: size } })
  try {
    // The record size of one entry, measured on the table itself.
    await cache.set(key(-1), value(-1))
    const probe = cache.stats().l1
    const recordBytes = probe.bytes
    await cache.delete(key(-1))
    const capacity = probe.capacity
    const n = Math.floor((capacity * fill) / recordBytes)
    for (let i = 0; i < n; i++) await cache.set(key(i), value(i))
    const used = cache.stats().l1.bytes
    let found = 0
    for (let i = 0; i < n; i++) if ((await cache.get(key(i))) !== undefined) found++

    const lru = new LRUCache<string, object>({ maxSize: capacity, sizeCalculation: () => recordBytes })
    for (let i = 0; i < n; i++) lru.set(key(i), value(i))
    let lruFound = 0
    for (let i = 0; i < n; i++) if (lru.get(key(i)) !== undefined) lruFound++

    const mib = capacity / 1024 / 1024
    return {
      size,
      fill: `${fill * 100}%`,
      written: n,
      recordBytes,
      ours: { found, foundPct: (found / n) * 100, usedPct: (used / capacity) * 100, heldPerMiB: found / mib },
      lru: { found: lruFound, foundPct: (lruFound / n) * 100, heldPerMiB: lruFound / mib },
      ratio: found / Math.max(1, lruFound),
    }
  } finally {
    await cache.close()
  }
}

export async function run(): Promise<FillRow[]> {
  const rows: FillRow[] = []
  for (const size of SIZES) for (const fill of FILLS) rows.push(await one(size, fill))
  return rows
}

export function report(rows: FillRow[]): void {
  console.log(`\n== ${SUITE} ==\nwrite N entries, then read each once (L1 only); lru-cache with the same byte budget`)
  console.table(
    rows.map((r) => ({
      'L1 size': r.size,
      fill: r.fill,
      written: r.written,
      'record B': r.recordBytes,
      'ours found': `${r.ours.foundPct.toFixed(1)}%`,
      'ours used': `${r.ours.usedPct.toFixed(1)}%`,
      'ours held/MiB': Math.round(r.ours.heldPerMiB),
      'lru found': `${r.lru.foundPct.toFixed(1)}%`,
      'lru held/MiB': Math.round(r.lru.heldPerMiB),
      'ours/lru': r.ratio.toFixed(2),
    })),
  )
  writeJson(SUITE, SETTINGS, { rows })
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await run())
