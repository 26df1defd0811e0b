// Goal 5a of bench/goals.ts: L2 get latency under a fixed open-loop load, against raw ioredis at the same rate.
import { Redis } from 'ioredis'
import { createCache } from '../src/index.js'
import { expectAllHit, latencyRow, manyKeys, NAMESPACE, pct, ready, SETTINGS } from './goals_common.js'
import type { GoalRow } from './goals_common.js'

interface OpenLoopResult {
  p50: number
  p99: number
  /** Completed gets per second, from the first scheduled start to the last completion. */
  achievedRate: number
  misses: number
  errors: number
  /** Requests still pending at the drain deadline; their latency counts as their age then (a lower bound). */
  unfinished: number
  /** This process's CPU time (user + system) per completed get. */
  cpuUsPerGet: number
  /** Settles when no request of this run is pending any more (later than the result when some were unfinished). */
  drained: Promise<void>
}

/**
 * Issues `rate` gets per second for `durationMs`, scheduled by elapsed time (each
 * ~1 ms timer tick issues every request whose scheduled start has passed), never
 * waiting for earlier ones. Latency runs from a request's scheduled start, so a late
 * tick counts against the system (no coordinated omission). Waits at most
 * `drainMs` after the last scheduled start for the stragglers, so an overloaded
 * system cannot stretch the suite without bound.
 */
export function openLoop(get: (k: string) => Promise<unknown>, keys: readonly string[], rate: number, durationMs: number, drainMs = SETTINGS.openLoop.drainMs): Promise<OpenLoopResult> {
  const total = Math.round((rate * durationMs) / 1000)
  const lat = new Float64Array(total).fill(Number.NaN)
  const perMs = rate / 1000
  let issued = 0
  let done = 0
  let misses = 0
  let errors = 0
  let lastDone = 0
  let over = false
  let pending = 0
  let onDrained: () => void = () => {}
  const drained = new Promise<void>((r) => (onDrained = r))
  return new Promise((resolve) => {
    const start = performance.now()
    const cpu = process.cpuUsage()
    const scheduled = (idx: number) => start + idx / perMs
    const end = (unfinished: number) => {
      over = true
      clearTimeout(deadline)
      const used = process.cpuUsage(cpu)
      const completed = total - unfinished
      lat.sort()
      resolve({
        p50: pct(lat, 0.5),
        p99: pct(lat, 0.99),
        achievedRate: completed / ((lastDone - start) / 1000),
        misses,
        errors,
        unfinished,
        cpuUsPerGet: (used.user + used.system) / Math.max(1, completed),
        drained,
      })
    }
    const deadline = setTimeout(() => {
      const now = performance.now()
      for (let i = 0; i < total; i++) if (Number.isNaN(lat[i])) lat[i] = now - scheduled(i)
      end(total - done)
    }, durationMs + drainMs)
    const finish = (idx: number) => {
      if (--pending === 0 && issued === total) onDrained()
      if (over) return
      const now = performance.now()
      lat[idx] = now - scheduled(idx)
      lastDone = now
      if (++done === total) end(0)
    }
    const tick = () => {
      if (over) return
      const due = Math.min(total, Math.floor((performance.now() - start) * perMs) + 1)
      while (issued < due) {
        const idx = issued++
        pending++
        get(keys[idx % keys.length] as string).then(
          (v) => {
            if (v === undefined || v === null) misses++
            finish(idx)
          },
          () => {
            errors++
            finish(idx)
          },
        )
      }
      if (issued < total) setTimeout(tick, SETTINGS.openLoop.tickMs)
    }
    tick()
  })
}

/** Runs after l2Goals on the standalone server, which left the 50,000 keys there. */
export async function openLoopGoals(redisUrl: string): Promise<GoalRow[]> {
  const { rate, durationMs, warmupMs } = SETTINGS.openLoop
  const keys = manyKeys
  const ours = await createCache({ redis: redisUrl, namespace: NAMESPACE, l1: false })
  const raw = new Redis(redisUrl, { enableAutoPipelining: true })
  try {
    await ready(raw)
    const rawKeys = keys.map((k) => `${NAMESPACE}:${k}`)
    const oursGet = (k: string) => ours.get(k)
    const rawGet = (k: string) => raw.getBuffer(`${NAMESPACE}:${k}`)
    expectAllHit('open loop nearcache', await Promise.all(keys.slice(-1000).map(oursGet)))
    expectAllHit('open loop ioredis', await Promise.all(rawKeys.slice(-1000).map((k) => raw.getBuffer(k))))

    // An overloaded run leaves requests pending: let them finish (bounded) before the next run starts.
    const settle = (r: OpenLoopResult) => Promise.race([r.drained, new Promise((ok) => setTimeout(ok, SETTINGS.openLoop.drainMs))]).then(() => r)
    await settle(await openLoop(oursGet, keys, rate, warmupMs))
    const o = await settle(await openLoop(oursGet, keys, rate, durationMs))
    await settle(await openLoop(rawGet, keys, rate, warmupMs))
    const p = await settle(await openLoop(rawGet, keys, rate, durationMs))
    for (const [name, r] of [['nearcache', o], ['ioredis', p]] as const) {
      if (r.misses > 0 || r.errors > 0) throw new Error(`open loop ${name}: ${r.misses} misses, ${r.errors} errors`)
    }
    const g = '5. L2 get at a fixed 50,000/s, 5 s'
    const total = (rate * durationMs) / 1000
    const note = (what: string, r: OpenLoopResult) => (r.unfinished > 0 ? `; ${what} ${r.unfinished.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} unfinished after +${SETTINGS.openLoop.drainMs / 1000} s (lower bound)` : '')
    return [
      latencyRow(g, 'p50 from scheduled start vs raw ioredis', 'ms', o.p50, p.p50),
      latencyRow(g, `p99 from scheduled start vs raw ioredis${note('ours', o)}${note('peer', p)}`, 'ms', o.p99, p.p99),
      // Throughput: ours/peer, as for the other throughput rows.
      { goal: g, scenario: 'achieved rate vs raw ioredis (target 50,000/s)', unit: 'gets/s', ours: o.achievedRate, peer: p.achievedRate, ratio: o.achievedRate / p.achievedRate, goalRatio: null, met: null },
      // Where the time goes: this process's CPU time per get while holding the rate.
      latencyRow(g, 'process CPU per get vs raw ioredis', 'µs', o.cpuUsPerGet, p.cpuUsPerGet),
    ]
  } finally {
    await Promise.allSettled([ours.close(), raw.quit()])
  }
}
