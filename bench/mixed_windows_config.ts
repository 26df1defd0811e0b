// One configuration of bench/mixed_windows.ts: a fresh measured cache, its hot set
// warmed at one moment, then C callers looping `await cache.get(key)` while the run
// is cut into 2-second windows. Measurement only: asserts nothing about timing.
import { performance } from 'node:perf_hooks'
import { createCache } from '../src/index.js'
import type { CacheOptions, NearCache, RedisOption } from '../src/index.js'
import { item, mulberry32 } from './fixtures.js'

export const NAMESPACE = 'mixed'
const HOT_SHARE = 0.9
export const WINDOW_MS = 2000
const WARM_CHUNK = 1000
const SEED = 0x13c0
/** Every CHECK_EVERY completed gets, a caller gives the window clock a chance to close a window. */
const CHECK_EVERY = 256

type Item = ReturnType<typeof item>

export interface Workload {
  callers: number
  seconds: number
  hotKeys: string[]
  coldKeys: string[]
}

export interface Window {
  index: number
  startS: number
  endS: number
  reqPerSec: number
  l1Share: number
  l2Hits: number
  misses: number
  errors: number
  wrong: number
  l1Entries: number
}

interface Counters {
  done: number
  errors: number
  wrong: number
}

const num = (n: number) => Math.round(n).toLocaleString('en-US')

async function caller(cache: NearCache, seed: number, w: Workload, c: Counters, running: () => boolean, check: () => void): Promise<void> {
  const rnd = mulberry32(seed)
  while (running()) {
    const isHot = rnd() < HOT_SHARE
    const i = Math.floor(rnd() * (isHot ? w.hotKeys.length : w.coldKeys.length))
    const key = isHot ? w.hotKeys[i]! : w.coldKeys[i]!
    try {
      const v = await cache.get<Item>(key)
      if (v !== undefined && v.id !== i) c.wrong++
    } catch {
      c.errors++
    }
    if (++c.done % CHECK_EVERY === 0) check()
  }
}

function nsCounts(cache: NearCache): { l1: number; l2: number; misses: number; l1Entries: number } {
  const s = cache.stats()
  const ns = s.namespaces[NAMESPACE]
  if (!ns) return { l1: 0, l2: 0, misses: 0, l1Entries: s.l1.entries }
  return { l1: ns.hits.l1, l2: ns.hits.l2, misses: ns.misses.l1 + ns.misses.l2, l1Entries: s.l1.entries }
}

/** Reads the whole hot set through the cache at one moment (a service warming up), so every L1 copy starts its l1.ttl together. */
async function warm(cache: NearCache, hotKeys: string[]): Promise<number> {
  const t0 = performance.now()
  const chunks: Promise<unknown>[] = []
  for (let from = 0; from < hotKeys.length; from += WARM_CHUNK) chunks.push(cache.getMany(hotKeys.slice(from, from + WARM_CHUNK)))
  await Promise.all(chunks)
  return performance.now() - t0
}

/** Runs one configuration: its windows, printed as they close. */
export async function runConfig(label: string, redis: RedisOption, options: Pick<CacheOptions, 'l1'>, w: Workload, cluster: boolean): Promise<Window[]> {
  const cache = await createCache({ redis, namespace: NAMESPACE, ...options })
  const windows: Window[] = []
  try {
    const capacity = cache.stats().l1.capacity
    const count = Math.ceil(w.seconds / (WINDOW_MS / 1000))
    const warmMs = await warm(cache, w.hotKeys)
    console.log(`\n[${label}] ${cluster ? 'Cluster (3 masters)' : 'standalone'}, ${w.callers} callers, ` +
      `${num(w.hotKeys.length)} hot / ${num(w.coldKeys.length)} cold keys, L1 capacity ${num(capacity)} bytes, ` +
      `hot set warmed in ${warmMs.toFixed(0)} ms (L1 entries ${num(cache.stats().l1.entries)}), ${count} windows of ${WINDOW_MS / 1000} s`)
    const c: Counters = { done: 0, errors: 0, wrong: 0 }
    let run = true
    const running = () => run
    let prev = { ...nsCounts(cache), done: 0, errors: 0, wrong: 0, at: performance.now() }
    const t0 = prev.at
    let finished!: () => void
    const allWindows = new Promise<void>((r) => { finished = r })
    // Closes the current window once its end has passed. Called from a 20 ms timer and,
    // every CHECK_EVERY gets, from the callers themselves: while every get is answered
    // from L1 the callers never leave the microtask queue, and no timer would fire.
    const check = () => {
      if (!run) return
      const now = performance.now()
      if (now < t0 + (windows.length + 1) * WINDOW_MS) return
      const cur = { ...nsCounts(cache), done: c.done, errors: c.errors, wrong: c.wrong, at: now }
      const l1 = cur.l1 - prev.l1
      const l2 = cur.l2 - prev.l2
      const misses = cur.misses - prev.misses
      const lookups = l1 + l2 + misses
      const win: Window = {
        index: windows.length + 1,
        startS: (prev.at - t0) / 1000,
        endS: (now - t0) / 1000,
        reqPerSec: (cur.done - prev.done) / ((now - prev.at) / 1000),
        l1Share: lookups > 0 ? l1 / lookups : 0,
        l2Hits: l2,
        misses,
        errors: cur.errors - prev.errors,
        wrong: cur.wrong - prev.wrong,
        l1Entries: cur.l1Entries,
      }
      windows.push(win)
      console.log(`  w${String(win.index).padStart(2)} ${win.startS.toFixed(1).padStart(5)}-${win.endS.toFixed(1).padStart(5)} s ` +
        `${num(win.reqPerSec).padStart(9)} req/s  L1 ${win.l1Share.toFixed(2)}  L2 hits ${num(l2).padStart(8)}  ` +
        `misses ${misses} errors ${win.errors} wrong ${win.wrong}  L1 entries ${num(win.l1Entries)}`)
      prev = cur
      if (windows.length >= count) {
        run = false
        finished()
      }
    }
    const timer = setInterval(check, 20)
    const loops = Array.from({ length: w.callers }, (_, k) => caller(cache, SEED + k, w, c, running, check))
    try {
      await allWindows
    } finally {
      clearInterval(timer)
      run = false
      await Promise.all(loops)
    }
  } finally {
    await cache.close()
  }
  return windows
}
