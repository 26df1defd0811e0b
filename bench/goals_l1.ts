// Goals 1 and 5b of bench/goals.ts: L1 hit get throughput and per-call latency.
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { Cacheable } from 'cacheable'
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
  const bento = new BentoCache({
    default: 'memory',
    stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 100_000 })) },
  })
  const cacheable = new Cacheable()
  try {
    await ours.setMany(l1Keys.map((key, i) => ({ key, value: item(i) })))
    for (let i = 0; i < L1_COLD_KEYS; i++) {
      await bento.set({ key: l1Keys[i] as string, value: item(i) })
      await cacheable.set(l1Keys[i] as string, item(i))
    }
    const getters: [string, (k: string) => Promise<unknown>][] = [
      ['nearcache', (k) => ours.get(k)],
      ['bentocache memory', (k) => bento.get({ key: k })],
      ['cacheable', (k) => cacheable.get(k)],
    ]
    for (const [name, get] of getters) {
      for (let i = 0; i < L1_COLD_KEYS; i += i < L1_KEYS ? 1 : 7) {
        const v = await get(l1Keys[i] as string)
        if (JSON.stringify(v) !== JSON.stringify(item(i))) throw new Error(`${name}: ${l1Keys[i]} answered ${JSON.stringify(v)}`)
      }
    }

    const scenario = 'L1 hit get'
    const b = bench(scenario, SETTINGS.l1Hit)
    for (const n of [L1_KEYS, L1_COLD_KEYS]) {
      for (const [name, get] of getters) {
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
    const [near, bentoFig, cacheableFig, nearCold, bentoCold, cacheableCold] = b.tasks.map((t) => figure(scenario, t, L1_GETS_PER_ITERATION)) as [TaskFigure, TaskFigure, TaskFigure, TaskFigure, TaskFigure, TaskFigure]
    const g1 = '1. L1 hit get (1000 sequential / iteration)'
    const rows = [
      throughputRow(g1, `vs bentocache memory tier (${L1_KEYS} keys)`, near, bentoFig, 10),
      throughputRow(g1, `vs cacheable (${L1_KEYS} keys)`, near, cacheableFig, 10),
      throughputRow(g1, `memo cold (${L1_COLD_KEYS.toLocaleString('en-US')} keys) vs bentocache memory tier`, nearCold, bentoCold, null),
      throughputRow(g1, `memo cold (${L1_COLD_KEYS.toLocaleString('en-US')} keys) vs cacheable`, nearCold, cacheableCold, null),
    ]

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
    const o = await lat(getters[0]![1])
    const p = await lat(getters[1]![1])
    const g = '5. L1 hit get latency, 1M calls over 1000 keys'
    rows.push(
      latencyRow(g, 'p50 vs bentocache memory tier', 'µs', o.p50, p.p50),
      latencyRow(g, 'p99 vs bentocache memory tier', 'µs', o.p99, p.p99),
      latencyRow(g, 'p99.9 vs bentocache memory tier', 'µs', o.p999, p.p999),
    )
    if (sink === Symbol.for('never')) console.log(sink)
    return rows
  } finally {
    await Promise.allSettled([ours.close(), bento.disconnect(), cacheable.disconnect()])
  }
}
