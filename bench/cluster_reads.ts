// L2-hit reads per node (issue 13): each iteration awaits 1000 concurrent `get`s of
// distinct existing keys (l1: false), in one process and run, against its peers:
//
//   Cluster (3 masters): nearcache with the per-node read script (clusterReadScript,
//   the default), without it (per-key reads; and per-slot MGETs with batchGets: true),
//   and raw ioredis Cluster getBuffer with enableAutoPipelining.
//   Standalone: nearcache (per-tick MGET) against raw ioredis getBuffer; and the
//   transport alone: the read script against MGET on a raw connection (would the
//   script pay on standalone too?).
//   Writes: Cluster setMany of 1000 entries against 1000 raw auto-pipelined SETs.
//
// Every pair runs ROUNDS times (tasks interleaved in each round); a row gives the
// median ops/s of each side and the median of the per-round ratios.
// Not wired into bench/run.ts. Alone: node --import tsx bench/cluster_reads.ts
import { pathToFileURL } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import { Bench } from 'tinybench'
import { createCache } from '../src/index.js'
import type { NearCache } from '../src/index.js'
import { READ_KEYS } from '../src/l2/scripts.js'
import { item } from './fixtures.js'
import { figure } from './report.js'
import { withServers } from './servers.js'
import type { BenchServers } from './servers.js'
import { expectAllHit, ready } from './goals_common.js'

export const SUITE = 'cluster_reads'
const NAMESPACE = 'bench'
const KEYS = 1000
const ROUNDS = 5
export const SETTINGS = { opsPerIteration: KEYS, rounds: ROUNDS, time: 1000, warmupTime: 250, warmupIterations: 8 }

const keys = Array.from({ length: KEYS }, (_, i) => `bench:item:${i}`)
const rawKeys = keys.map((k) => `${NAMESPACE}:${k}`)

/** One comparison: medians over the rounds, and the median of the per-round ratios. */
export interface ClusterReadsRow {
  scenario: string
  ours: string
  peer: string
  unit: string
  oursOpsPerSec: number
  peerOpsPerSec: number
  /** Median of ours/peer over the rounds (above 1: ours is faster). */
  ratio: number
  /** Each round's ratio. */
  ratios: number[]
}

type Task = [name: string, fn: () => Promise<unknown>]

/** Something the optimizer cannot prove unused. */
let sink: unknown

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

/** Runs the tasks ROUNDS times (interleaved within each round): ops/s per task per round. */
async function measure(scenario: string, tasks: Task[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(tasks.map(([name]) => [name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    const b = new Bench({ name: scenario, ...SETTINGS, timestampProvider: 'hrtimeNow', warmup: true, throws: true })
    for (const [name, fn] of tasks) b.add(name, async () => { sink = await fn() })
    await b.run()
    for (const t of b.tasks) out.get(t.name)?.push(figure(scenario, t, KEYS).opsPerSec)
  }
  return out
}

function row(scenario: string, unit: string, m: Map<string, number[]>, ours: string, peer: string): ClusterReadsRow {
  const o = m.get(ours) as number[]
  const p = m.get(peer) as number[]
  const ratios = o.map((v, i) => v / (p[i] as number))
  return { scenario, ours, peer, unit, oursOpsPerSec: median(o), peerOpsPerSec: median(p), ratio: median(ratios), ratios }
}

const getAll = (c: NearCache) => () => Promise.all(keys.map((k) => c.get(k)))

async function clusterRows(nodes: BenchServers['clusterNodes']): Promise<ClusterReadsRow[]> {
  const scenario = 'cluster (3 masters), L2 hit get, 1000 concurrent'
  const script = await createCache({ redis: { cluster: nodes }, namespace: NAMESPACE, l1: false })
  const perKey = await createCache({ redis: { cluster: nodes }, namespace: NAMESPACE, l1: false, clusterReadScript: false })
  const perSlot = await createCache({ redis: { cluster: nodes }, namespace: NAMESPACE, l1: false, clusterReadScript: false, batchGets: true })
  const raw = new Cluster(nodes, { enableAutoPipelining: true })
  try {
    await ready(raw)
    await script.setMany(keys.map((key, i) => ({ key, value: item(i) })))
    const tasks: Task[] = [
      ['nearcache (read script)', getAll(script)],
      ['nearcache clusterReadScript:false', getAll(perKey)],
      ['nearcache clusterReadScript:false batchGets:true', getAll(perSlot)],
      ['ioredis Cluster getBuffer (autopipelining)', () => Promise.all(rawKeys.map((k) => raw.getBuffer(k)))],
    ]
    for (const [name, fn] of tasks) expectAllHit(name, (await fn()) as unknown[])
    const m = await measure(scenario, tasks)
    const peer = 'ioredis Cluster getBuffer (autopipelining)'
    const rows = [
      row(scenario, 'gets/s', m, 'nearcache (read script)', peer),
      row(scenario, 'gets/s', m, 'nearcache clusterReadScript:false', peer),
      row(scenario, 'gets/s', m, 'nearcache clusterReadScript:false batchGets:true', peer),
      row(scenario, 'gets/s', m, 'nearcache (read script)', 'nearcache clusterReadScript:false'),
    ]
    // Writes, today's path: setMany of 1000 entries against 1000 auto-pipelined SETs.
    const writes = 'cluster (3 masters), setMany of 1000 entries'
    const values = keys.map((key, i) => ({ key, value: item(i) }))
    const bytes = (await raw.mgetBuffer(rawKeys.slice(0, 1))).map((v) => v as Buffer)[0] as Buffer
    const w = await measure(writes, [
      ['nearcache setMany', () => script.setMany(values)],
      ['ioredis Cluster set ×1000 (autopipelining)', () => Promise.all(rawKeys.map((k) => raw.set(`${k}:w`, bytes)))],
    ])
    rows.push(row(writes, 'sets/s', w, 'nearcache setMany', 'ioredis Cluster set ×1000 (autopipelining)'))
    return rows
  } finally {
    await Promise.allSettled([script.close(), perKey.close(), perSlot.close(), raw.quit()])
  }
}

async function standaloneRows(url: string): Promise<ClusterReadsRow[]> {
  const scenario = 'standalone, L2 hit get, 1000 concurrent'
  const cache = await createCache({ redis: url, namespace: NAMESPACE, l1: false })
  const raw = new Redis(url, { enableAutoPipelining: true })
  const plain = new Redis(url)
  try {
    await Promise.all([ready(raw), ready(plain)])
    await cache.setMany(keys.map((key, i) => ({ key, value: item(i) })))
    const halves = [rawKeys.slice(0, KEYS / 2), rawKeys.slice(KEYS / 2)]
    const tasks: Task[] = [
      ['nearcache', getAll(cache)],
      ['ioredis getBuffer (autopipelining)', () => Promise.all(rawKeys.map((k) => raw.getBuffer(k)))],
      ['transport: MGET ×2 (500 keys)', async () => (await Promise.all(halves.map((h) => plain.mgetBuffer(h)))).flat()],
      ['transport: read script ×2 (500 keys)', async () => (await Promise.all(halves.map((h) => READ_KEYS.run(plain, [], h) as Promise<unknown[]>))).flat()],
    ]
    for (const [name, fn] of tasks) expectAllHit(name, (await fn()) as unknown[])
    const m = await measure(scenario, tasks)
    return [
      row(scenario, 'gets/s', m, 'nearcache', 'ioredis getBuffer (autopipelining)'),
      row(scenario, 'gets/s', m, 'transport: read script ×2 (500 keys)', 'transport: MGET ×2 (500 keys)'),
    ]
  } finally {
    await Promise.allSettled([cache.close(), raw.quit(), plain.quit()])
  }
}

/** The Cluster first, then standalone (never at once: they would share the 2 cores). */
export async function run(servers: BenchServers): Promise<ClusterReadsRow[]> {
  return [...(await clusterRows(servers.clusterNodes)), ...(await standaloneRows(servers.redisUrl))]
}

export function print(rows: readonly ClusterReadsRow[]): void {
  const k = (n: number) => `${(n / 1000).toFixed(0)}k`
  for (const r of rows) {
    console.log(`${r.scenario}: ${r.ours} ${k(r.oursOpsPerSec)} ${r.unit} / ${r.peer} ${k(r.peerOpsPerSec)} = ${r.ratio.toFixed(2)}× (rounds: ${r.ratios.map((x) => x.toFixed(2)).join(' ')})`)
  }
  void sink
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await withServers(async (servers) => print(await run(servers)))
}
