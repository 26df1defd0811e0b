// Goals 2 and 3 of bench/goals.ts: L2 hit get throughput, 1000 concurrent, standalone and Cluster.
import { BentoCache, bentostore } from 'bentocache'
import { redisDriver } from 'bentocache/drivers/redis'
import type { Cluster, Redis } from 'ioredis'
import { createCache } from '../src/index.js'
import type { RedisOption } from '../src/index.js'
import { item } from './fixtures.js'
import { figure } from './report.js'
import type { TaskFigure } from './report.js'
import { bench, expectAllHit, L2_KEYS_PER_ITERATION, l2Keys, manyKeys, NAMESPACE, OPEN_LOOP_KEYS, ready, SETTINGS, throughputRow } from './goals_common.js'
import type { GoalRow } from './goals_common.js'

/** Something the optimizer cannot prove unused. */
let sink: unknown

interface Closer { close(): Promise<unknown> }

export async function l2Goals(goal: string, redis: RedisOption, raw: () => Redis | Cluster, standalone: (() => Redis) | null, target: number): Promise<GoalRow[]> {
  const opened: Closer[] = []
  try {
    const ours = await createCache({ redis, namespace: NAMESPACE, l1: false })
    opened.push(ours)
    const rawClient = raw()
    opened.push({ close: () => rawClient.quit() })
    await ready(rawClient)
    const preload = standalone ? manyKeys : l2Keys
    for (let i = 0; i < preload.length; i += 5000) {
      await ours.setMany(preload.slice(i, i + 5000).map((key, j) => ({ key, value: item(i + j) })))
    }
    const rawKeys = l2Keys.map((k) => `${NAMESPACE}:${k}`)

    const tasks: [string, () => Promise<unknown[]>][] = [
      ['nearcache', () => Promise.all(l2Keys.map((k) => ours.get(k)))],
      ['ioredis getBuffer (autopipelining)', () => Promise.all(rawKeys.map((k) => rawClient.getBuffer(k)))],
    ]
    if (standalone) {
      const slices = Array.from({ length: OPEN_LOOP_KEYS / L2_KEYS_PER_ITERATION }, (_, i) => manyKeys.slice(i * L2_KEYS_PER_ITERATION, (i + 1) * L2_KEYS_PER_ITERATION))
      let next = 0
      tasks.push(['nearcache, memo cold', () => Promise.all((slices[next++ % slices.length] as string[]).map((k) => ours.get(k)))])
      const connection = standalone()
      opened.push({ close: () => connection.quit() })
      await ready(connection)
      const bento = new BentoCache({ default: 'redis', stores: { redis: bentostore().useL2Layer(redisDriver({ connection })) } })
      opened.push({ close: () => bento.disconnect() })
      for (let i = 0; i < L2_KEYS_PER_ITERATION; i += 100) {
        await Promise.all(l2Keys.slice(i, i + 100).map((key, j) => bento.set({ key, value: item(i + j) })))
      }
      tasks.push(['bentocache redis tier', () => Promise.all(l2Keys.map((k) => bento.get({ key: k })))])
    }
    for (const [name, getAll] of tasks) expectAllHit(`${goal} ${name}`, await getAll())

    const b = bench(goal, SETTINGS.l2Hit)
    for (const [name, getAll] of tasks) b.add(name, async () => { sink = await getAll() })
    await b.run()
    const figs = b.tasks.map((t) => figure(goal, t, L2_KEYS_PER_ITERATION))
    const [near, io, cold, bentoFig] = figs as [TaskFigure, TaskFigure, TaskFigure | undefined, TaskFigure | undefined]
    const rows = [throughputRow(goal, 'vs raw ioredis getBuffer, autopipelined', near, io, target)]
    if (bentoFig) rows.push(throughputRow(goal, "vs bentocache's Redis tier", near, bentoFig, 8))
    if (cold) {
      rows.push(
        throughputRow(goal, 'memo cold (keys over 50,000) vs raw ioredis', cold, io, null),
        throughputRow(goal, "memo cold (keys over 50,000) vs bentocache's Redis tier", cold, bentoFig as TaskFigure, null),
      )
    }
    if (sink === Symbol.for('never')) console.log(sink)
    return rows
  } finally {
    await Promise.allSettled(opened.reverse().map((c) => c.close()))
  }
}
