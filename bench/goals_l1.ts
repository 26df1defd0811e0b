// Goals 1 and 5b of bench/goals.ts: L1 hit get throughput and per-call latency.
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { Cacheable } from 'cacheable'
import { LRUCache } from 'lru-cache'
import { createCache } from '../src/index.js'
import { item } from './fixtures.js'
import { figure } from './report.js'
import type { TaskFigure } from './report.js'
import { bench, expectHit, L1_COLD_KEYS, L1_GETS_PER_ITERATION, L1_KEYS, l1Keys, latencyRow, NAMESPACE, pct, SETTINGS, throughputRow } from './goals_common.js'
import type { GoalRow } from './goals_common.js'

/** Something the optimizer cannot prove unused. */
let sink: unknown

export async function l1Goals(): Promise<GoalRow[]> {
  const ours = await createCache({ redis: false, namespace: NAMESPACE })
  const shared = await createCache({ redis: false, namespace: `${NAMESPACE}_shared`, l1: { shareValues: true } })
  const lru = new LRUCache<string, object>({ max: 100_000 })
  const bento = new BentoCache({
    default: 'memory',
    stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 100_000 })) },
  })
  const cacheable = new Cacheable()
  try {
    await ours.setMany(l1Keys.map((key, i) => ({ key, value: item(i) })))
    await shared.setMany(l1Keys.map((key, i) => ({ key, value: item(i) })))
    for (let i = 0; i < L1_COLD_KEYS; i++) {
      lru.set(l1Keys[i] as string, item(i))
      await bento.set({ key: l1Keys[i] as string, value: item(i) })
      await cacheable.set(l1Keys[i] as string, item(i))
    }
    // The first three are the peers of every row; the rest are measured on the 1000 keys only.
    const getters: [string, (k: string) => unknown][] = [
      ['nearcache', (k) => ours.get(k)],
      ['bentocache memory', (k) => bento.get({ key: k })],
      ['cacheable', (k) => cacheable.get(k)],
      ['nearcache l1.shareValues', (k) => shared.get(k)],
      ['lru-cache (async wrapper)', async (k) => lru.get(k)],
    ]
    const getSync = (ours as unknown as { getSync?: (k: string) => unknown }).getSync
    if (typeof getSync === 'function') getters.push(['nearcache getSync', (k) => getSync.call(ours, k)])
    for (const [name, get] of getters) {
      for (let i = 0; i < L1_COLD_KEYS; i += i < L1_KEYS ? 1 : 7) {
        const v = await get(l1Keys[i] as string)
        if (JSON.stringify(v) !== JSON.stringify(item(i))) throw new Error(`${name}: ${l1Keys[i]} answered ${JSON.stringify(v)}`)
      }
    }

    const scenario = 'L1 hit get'
    const b = bench(scenario, SETTINGS.l1Hit)
    for (const n of [L1_KEYS, L1_COLD_KEYS]) {
      for (const [name, get] of n === L1_KEYS ? getters : getters.slice(0, 3)) {
        let i = 0
        b.add(`${name}, ${n} keys`, async () => {
          for (let j = 0; j < L1_GETS_PER_ITERATION; j++) {
            const v = await get(l1Keys[i++ % n] as string)
            if (v === undefined) expectHit(name, v)
            sink = v
          }
        })
      }
    }
    await b.run()
    const figs = new Map(b.tasks.map((t) => [t.name, figure(scenario, t, L1_GETS_PER_ITERATION)]))
    const fig = (name: string, n: number) => figs.get(`${name}, ${n} keys`) as TaskFigure
    const [near, bentoFig, cacheableFig] = ['nearcache', 'bentocache memory', 'cacheable'].map((n) => fig(n, L1_KEYS)) as [TaskFigure, TaskFigure, TaskFigure]
    const [nearCold, bentoCold, cacheableCold] = ['nearcache', 'bentocache memory', 'cacheable'].map((n) => fig(n, L1_COLD_KEYS)) as [TaskFigure, TaskFigure, TaskFigure]
    const sharedFig = fig('nearcache l1.shareValues', L1_KEYS)
    const lruFig = fig('lru-cache (async wrapper)', L1_KEYS)
    const g1 = '1. L1 hit get (1000 sequential / iteration)'
    const rows = [
      throughputRow(g1, `own copies vs bentocache memory tier (${L1_KEYS} keys)`, near, bentoFig, 15),
      throughputRow(g1, `own copies vs cacheable (${L1_KEYS} keys)`, near, cacheableFig, 15),
      throughputRow(g1, 'own copies vs lru-cache (async wrapper, shared references)', near, lruFig, null),
      throughputRow(g1, 'l1.shareValues vs bentocache memory tier', sharedFig, bentoFig, 40),
      throughputRow(g1, 'l1.shareValues vs lru-cache (async wrapper)', sharedFig, lruFig, null),
      throughputRow(g1, `memo cold (${L1_COLD_KEYS.toLocaleString('en-US')} keys) vs bentocache memory tier`, nearCold, bentoCold, null),
      throughputRow(g1, `memo cold (${L1_COLD_KEYS.toLocaleString('en-US')} keys) vs cacheable`, nearCold, cacheableCold, null),
    ]
    const syncFig = figs.get(`nearcache getSync, ${L1_KEYS} keys`)
    if (syncFig) rows.push(throughputRow(g1, 'getSync (own copies) vs bentocache memory tier', syncFig, bentoFig, null))

    // 5b: per-call latency of an L1 hit, ours and bentocache's memory tier, same call count.
    const lat = async (get: (k: string) => Promise<unknown>) => {
      const { calls, warmupCalls } = SETTINGS.l1Latency
      for (let i = 0; i < warmupCalls; i++) sink = await get(l1Keys[i % L1_KEYS] as string)
      const out = new Float64Array(calls)
      for (let i = 0; i < calls; i++) {
        const k = l1Keys[i % L1_KEYS] as string
        const t0 = performance.now()
        const v = await get(k)
        out[i] = performance.now() - t0
        sink = v
      }
      out.sort()
      return { p50: pct(out, 0.5) * 1000, p99: pct(out, 0.99) * 1000, p999: pct(out, 0.999) * 1000 }
    }
    const o = await lat(async (k) => ours.get(k))
    const p = await lat(async (k) => bento.get({ key: k }))
    const g = '5. L1 hit get latency, 1M calls over 1000 keys'
    rows.push(
      latencyRow(g, 'p50 vs bentocache memory tier', 'µs', o.p50, p.p50),
      latencyRow(g, 'p99 vs bentocache memory tier', 'µs', o.p99, p.p99),
      latencyRow(g, 'p99.9 vs bentocache memory tier', 'µs', o.p999, p.p999),
    )
    if (sink === Symbol.for('never')) console.log(sink)
    return rows
  } finally {
    await Promise.allSettled([ours.close(), shared.close(), bento.disconnect(), cacheable.disconnect()])
  }
}
