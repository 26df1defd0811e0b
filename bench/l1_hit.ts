// How fast is an L1 hit through each library's public async API? Every library
// holds the same 1000 ~150-byte objects in process memory; a task reads them back
// one at a time, cycling through the keys. Peers: bentocache (one-tier store with
// its memory driver), cacheable (its default in-memory primary, CacheableMemory
// behind Keyv), lru-cache (sync; wrapped in an async function for the async API
// shape, and also measured raw). An empty async task shows the harness's own floor.
//
// Two scenarios: "1 get / iteration" (the brief's shape: one awaited get per
// tinybench iteration, so harness overhead is part of every sample) and
// "1000 sequential gets / iteration" (the same gets, awaited one after another,
// 1000 per sample, which amortizes the harness).
//
// What a hit hands back differs: nearcache decodes a fresh copy from its stored
// bytes (envelope check + msgpack), bentocache JSON.parses a fresh copy (its memory driver serializes by
// default), cacheable structuredClones (CacheableMemory useClone: true by default),
// lru-cache answers the stored reference.
//
// nearcache is measured three ways: `await get` in its default copy mode (each
// caller its own copy), `await get` with l1.shareValues (one deep-frozen value per
// thread and key), and the synchronous L1-only getSync (copy mode). The sync rows
// compare getSync with lru-cache's raw sync get.
//
// No Redis needed. Alone: node --import tsx bench/l1_hit.ts
import { pathToFileURL } from 'node:url'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { Cacheable } from 'cacheable'
import { LRUCache } from 'lru-cache'
import { Bench } from 'tinybench'
import { createCache } from '../src/index.js'
import { item } from './fixtures.js'
import { compare, figure, report } from './report.js'
import type { Comparison, SuiteResult, TaskFigure } from './report.js'

export const SUITE = 'l1_hit'
const KEYS = 1000
const SEQUENTIAL = 1000
export const SETTINGS = {
  preloadedKeys: KEYS,
  sequentialGetsPerIteration: SEQUENTIAL,
  time: 1000,
  warmupTime: 250,
  warmupIterations: 16,
  timestampProvider: 'hrtimeNow',
  peers: {
    nearcache: "createCache({ redis: false }) (L1-only, default l1.maxBytes '64mb')",
    'nearcache shareValues': "createCache({ redis: false, l1: { shareValues: true } })",
    bentocache: "new BentoCache({ default: 'memory', stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 10000 })) } })",
    cacheable: 'new Cacheable() (primary: Keyv over CacheableMemory, useClone: true)',
    'lru-cache': 'new LRUCache({ max: 10000 })',
  },
}

type Item = ReturnType<typeof item>
const keys = Array.from({ length: KEYS }, (_, i) => `bench:item:${i}`)

const OURS = 'nearcache get'
const OURS_SHARED = 'nearcache get (shareValues)'
const OURS_SYNC = 'nearcache getSync (sync)'
const BENTO = 'bentocache get'
const CACHEABLE = 'cacheable get'
const LRU_ASYNC = 'lru-cache get (async wrapper)'
const LRU_SYNC = 'lru-cache get (sync, raw)'
const EMPTY = 'empty async fn (harness floor)'

interface Getter {
  name: string
  get(key: string): Promise<unknown>
}

/** Something the optimizer cannot prove unused. */
let sink: unknown

function expectHit(name: string, key: string, v: unknown): void {
  if (v === undefined || v === null) throw new Error(`${name}: ${key} missed; the preload did not work`)
}

async function open() {
  const ours = await createCache({ redis: false, namespace: 'bench' })
  await ours.setMany(keys.map((key, i) => ({ key, value: item(i) })))
  const shared = await createCache({ redis: false, namespace: 'bench', l1: { shareValues: true } })
  await shared.setMany(keys.map((key, i) => ({ key, value: item(i) })))
  for (const key of keys) if (ours.getSync(key) === undefined) throw new Error(`${OURS_SYNC}: ${key} missed`)

  // memoryDriver's maxItems defaults to 1000 even when maxSize is given; set it above the key count.
  const bento = new BentoCache({
    default: 'memory',
    stores: { memory: bentostore().useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 10_000 })) },
  })
  for (let i = 0; i < KEYS; i++) await bento.set({ key: keys[i] as string, value: item(i) })

  const cacheable = new Cacheable()
  for (let i = 0; i < KEYS; i++) await cacheable.set(keys[i] as string, item(i))

  const lru = new LRUCache<string, Item>({ max: 10_000 })
  for (let i = 0; i < KEYS; i++) lru.set(keys[i] as string, item(i))

  const getters: Getter[] = [
    { name: OURS, get: (k) => ours.get(k) },
    { name: OURS_SHARED, get: (k) => shared.get(k) },
    { name: BENTO, get: (k) => bento.get({ key: k }) },
    { name: CACHEABLE, get: (k) => cacheable.get(k) },
    { name: LRU_ASYNC, get: async (k) => lru.get(k) },
  ]
  // Every peer answers every key, with an equal value.
  for (const g of getters) {
    for (let i = 0; i < KEYS; i++) {
      const v = await g.get(keys[i] as string)
      expectHit(g.name, keys[i] as string, v)
      if (JSON.stringify(v) !== JSON.stringify(item(i))) throw new Error(`${g.name}: ${keys[i]} answered a different value`)
    }
  }
  const close = async () => {
    await Promise.allSettled([ours.close(), shared.close(), bento.disconnect(), cacheable.disconnect()])
    lru.clear()
  }
  return { getters, lru, getSync: (k: string) => ours.getSync(k), close }
}

function addTasks(bench: Bench, getters: Getter[], lru: LRUCache<string, Item>, getSync: (k: string) => unknown, perIteration: number): void {
  for (const g of getters) {
    let i = 0
    if (perIteration === 1) {
      bench.add(g.name, async () => {
        const k = keys[i++ % KEYS] as string
        const v = await g.get(k)
        if (v === undefined) expectHit(g.name, k, v)
        sink = v
      })
    } else {
      bench.add(g.name, async () => {
        for (let j = 0; j < perIteration; j++) {
          const k = keys[i++ % KEYS] as string
          const v = await g.get(k)
          if (v === undefined) expectHit(g.name, k, v)
          sink = v
        }
      })
    }
  }
  let n = 0
  bench.add(OURS_SYNC, () => {
    for (let j = 0; j < perIteration; j++) {
      const k = keys[n++ % KEYS] as string
      const v = getSync(k)
      if (v === undefined) expectHit(OURS_SYNC, k, v)
      sink = v
    }
  })
  let i = 0
  bench.add(LRU_SYNC, () => {
    for (let j = 0; j < perIteration; j++) {
      const k = keys[i++ % KEYS] as string
      const v = lru.get(k)
      if (v === undefined) expectHit(LRU_SYNC, k, v)
      sink = v
    }
  })
  if (perIteration === 1) bench.add(EMPTY, async () => {})
  else {
    bench.add(EMPTY, async () => {
      for (let j = 0; j < perIteration; j++) await undefined
    })
  }
}

export async function run(): Promise<SuiteResult> {
  const result: SuiteResult = { suite: SUITE, tasks: [], rows: [] }
  const { getters, lru, getSync, close } = await open()
  try {
    for (const perIteration of [1, SEQUENTIAL]) {
      const scenario = perIteration === 1 ? '1 get / iteration' : `${perIteration} sequential gets / iteration`
      const bench = new Bench({
        name: scenario,
        time: SETTINGS.time,
        warmupTime: SETTINGS.warmupTime,
        warmupIterations: SETTINGS.warmupIterations,
        timestampProvider: 'hrtimeNow',
        warmup: true,
        throws: true,
      })
      addTasks(bench, getters, lru, getSync, perIteration)
      await bench.run()
      const figs = new Map<string, TaskFigure>(bench.tasks.map((t) => [t.name, figure(scenario, t, perIteration)]))
      const f = (name: string) => figs.get(name) as TaskFigure
      result.tasks.push(...figs.values())
      const rows: Comparison[] = [BENTO, CACHEABLE, LRU_ASYNC, LRU_SYNC].map((peer) => compare(scenario, f(OURS), f(peer)))
      rows.push(...[BENTO, LRU_ASYNC].map((peer) => compare(scenario, f(OURS_SHARED), f(peer))))
      rows.push(...[BENTO, LRU_SYNC].map((peer) => compare(scenario, f(OURS_SYNC), f(peer))))
      rows.push(compare(scenario, f(OURS_SHARED), f(OURS)), compare(scenario, f(OURS_SYNC), f(OURS)))
      result.rows.push(...rows)
    }
  } finally {
    await close()
  }
  if (sink === Symbol.for('never')) console.log(sink)
  return result
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await report(await run(), SETTINGS)
}
