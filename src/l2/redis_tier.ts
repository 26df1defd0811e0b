import type { Cluster, Redis } from 'ioredis'
import type { Tier, TierWrite } from '../tier.js'
import { wrapRedisError } from './errors.js'
import { GetBatcher } from './get_batcher.js'
import { CAS_SET, INIT_COUNTER, randomCounterStart, TAKE } from './scripts.js'
import { chunk, globEscape, groupBySlot } from './slots.js'

const SCAN_COUNT = 1000

/** L2 over one ioredis client, standalone or Cluster. */
export class RedisTier implements Tier {
  readonly kind = 'l2' as const
  readonly cluster: boolean
  private readonly batcher: GetBatcher | undefined

  constructor(
    readonly client: Redis | Cluster,
    private readonly owned: boolean,
    batchGets: boolean | undefined,
  ) {
    this.cluster = (client as Cluster).isCluster === true
    this.batcher = batchGets ?? !this.cluster ? new GetBatcher(client, this.cluster) : undefined
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      if (this.batcher) return await this.batcher.get(key)
      const [v] = await this.client.mgetBuffer(key)
      return v ?? null
    } catch (err) {
      throw wrapRedisError(err, 'get')
    }
  }

  async mget(keys: string[]): Promise<(Buffer | null)[]> {
    const out: (Buffer | null)[] = new Array(keys.length).fill(null)
    try {
      await Promise.all(
        groupBySlot(keys, this.cluster).flatMap((group) =>
          chunk(group, 512).map(async (part) => {
            const values = await this.client.mgetBuffer(part.map((i) => keys[i] as string))
            part.forEach((i, j) => (out[i] = values[j] ?? null))
          }),
        ),
      )
    } catch (err) {
      throw wrapRedisError(err, 'mget')
    }
    return out
  }

  async set(writes: TierWrite[]): Promise<void> {
    try {
      await Promise.all(
        writes.map((w) => (w.px === undefined ? this.client.set(w.key, w.bytes) : this.client.set(w.key, w.bytes, 'PX', w.px))),
      )
    } catch (err) {
      throw wrapRedisError(err, 'set')
    }
  }

  async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    try {
      const r = await CAS_SET.run(this.client, [w.key], [expectSha1 ?? '', w.bytes, w.px === undefined ? '' : w.px])
      return r === 1
    } catch (err) {
      throw wrapRedisError(err, 'a conditional set')
    }
  }

  async take(keys: string[]): Promise<(Buffer | null)[]> {
    const out: (Buffer | null)[] = new Array(keys.length).fill(null)
    try {
      await Promise.all(
        groupBySlot(keys, this.cluster).flatMap((group) =>
          chunk(group, 512).map(async (part) => {
            const values = (await TAKE.run(this.client, part.map((i) => keys[i] as string), [])) as (Buffer | null)[]
            part.forEach((i, j) => (out[i] = values[j] ?? null))
          }),
        ),
      )
    } catch (err) {
      throw wrapRedisError(err, 'delete')
    }
    return out
  }

  async readCounters(keys: string[], init: boolean): Promise<(number | null)[]> {
    const raw = await this.mget(keys)
    const out = raw.map((b) => (b === null ? null : Number(b.toString('latin1'))))
    if (!init) return out
    try {
      await Promise.all(
        out.map(async (v, i) => {
          if (v !== null) return
          const r = (await INIT_COUNTER.run(this.client, [keys[i] as string], [randomCounterStart()])) as Buffer
          out[i] = Number(r.toString('latin1'))
        }),
      )
    } catch (err) {
      throw wrapRedisError(err, 'reading tag epochs')
    }
    return out
  }

  async bumpCounters(keys: string[]): Promise<void> {
    try {
      await Promise.all(keys.map((k) => this.client.incr(k)))
    } catch (err) {
      throw wrapRedisError(err, 'invalidateTags')
    }
  }

  async deletePrefixes(prefixes: string[]): Promise<number> {
    const nodes: Redis[] = this.cluster ? (this.client as Cluster).nodes('master') : [this.client as Redis]
    try {
      const counts = await Promise.all(nodes.flatMap((node) => prefixes.map((p) => this.scanDelete(node, `${globEscape(p)}*`))))
      return counts.reduce((a, b) => a + b, 0)
    } catch (err) {
      throw wrapRedisError(err, 'a prefix delete')
    }
  }

  /** SCANs one node and UNLINKs what matches, one command per slot (through the routing client). */
  private async scanDelete(node: Redis, match: string): Promise<number> {
    let cursor = '0'
    let removed = 0
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT)
      cursor = next
      if (keys.length > 0) {
        const counts = await Promise.all(
          groupBySlot(keys, this.cluster).map((g) => this.client.unlink(...g.map((i) => keys[i] as string))),
        )
        removed += counts.reduce((a, b) => a + b, 0)
      }
    } while (cursor !== '0')
    return removed
  }

  async close(): Promise<void> {
    if (!this.owned) return
    try {
      await this.client.quit()
    } catch {
      this.client.disconnect()
    }
  }
}
