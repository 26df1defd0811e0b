import type { Cluster, Redis } from 'ioredis'
import { Field } from '../observability/stats.js'
import type { Meter } from '../observability/stats.js'
import type { CounterOp, Tier, TierWrite } from '../tiers/tier.js'
import { wrapRedisError } from './errors.js'
import { lastConnectionError } from './connect.js'
import { GetBatcher } from './get_batcher.js'
import { BUMP_COUNTER, CAS_SET, INIT_COUNTER, randomCounterStart, RELEASE_LOCK, TAKE } from './scripts.js'
import { chunk, globEscape, groupBySlot } from './slots.js'
import { Gate } from '../util/gate.js'
import type { CircuitBreaker } from './circuit_breaker.js'

function withTimeout<T>(p: Promise<T>, ms: number, op: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${op} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}

const SCAN_COUNT = 1000

/** L2 over one ioredis client, standalone or Cluster. */
export class RedisTier implements Tier {
  readonly cluster: boolean
  private readonly batcher: GetBatcher | undefined
  /** Caps the operations in flight to Redis (backpressure). */
  readonly gate: Gate

  constructor(
    readonly client: Redis | Cluster,
    private readonly owned: boolean,
    batchGets: boolean | undefined,
    private readonly meter: Meter,
    maxInFlight = 10_000,
    /** Opens on repeated failures; undefined = no breaker. */
    readonly breaker?: CircuitBreaker,
    /** A deadline for operations on a client nearcache did not create (its own clients have ioredis' commandTimeout). */
    private readonly timeoutMs?: number,
  ) {
    this.gate = new Gate(maxInFlight)
    this.cluster = (client as Cluster).isCluster === true
    this.batcher = batchGets ?? !this.cluster ? new GetBatcher(client, this.cluster) : undefined
  }

  /** Runs one L2 operation: timed, failures counted and turned into CacheErrors. */
  private async op<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let probe = false
    try {
      probe = this.breaker?.admit(name) ?? false
    } catch (err) {
      this.meter.add(Field.Errors)
      throw err
    }
    const wait = this.gate.enter()
    if (wait) await wait
    const start = performance.now()
    try {
      const v = await (this.timeoutMs === undefined || this.owned ? fn() : withTimeout(fn(), this.timeoutMs, name))
      this.breaker?.success(probe)
      return v
    } catch (err) {
      this.meter.add(Field.Errors)
      const e = wrapRedisError(err, name, lastConnectionError(this.client))
      // Only "Redis is unreachable" counts; a reply error (NOPERM, WRONGTYPE, ...) proves it is up.
      if (e.code === 'E_L2_UNAVAILABLE') this.breaker?.failure(probe, e.cause instanceof Error ? e.cause : undefined)
      else this.breaker?.success(probe)
      throw e
    } finally {
      this.meter.time(start)
      this.gate.leave()
    }
  }

  private counted(v: Buffer | null): Buffer | null {
    this.meter.add(v === null ? Field.Misses : Field.Hits)
    return v
  }

  get(key: string, fresh?: boolean): Promise<Buffer | null> {
    if (fresh) return this.op('get', () => this.getOne(key))
    return this.op('get', async () => this.counted(this.batcher ? await this.batcher.get(key) : await this.getOne(key)))
  }

  peek(): undefined {
    return undefined
  }

  private async getOne(key: string): Promise<Buffer | null> {
    const [v] = await this.client.mgetBuffer(key)
    return v ?? null
  }

  mget(keys: string[]): Promise<(Buffer | null)[]> {
    return this.op('mget', async () => (await this.mgetRaw(keys)).map((v) => this.counted(v)))
  }

  private async mgetRaw(keys: string[]): Promise<(Buffer | null)[]> {
    const out: (Buffer | null)[] = new Array(keys.length).fill(null)
    {
      await Promise.all(
        groupBySlot(keys, this.cluster).flatMap((group) =>
          chunk(group, 512).map(async (part) => {
            const values = await this.client.mgetBuffer(part.map((i) => keys[i] as string))
            part.forEach((i, j) => (out[i] = values[j] ?? null))
          }),
        ),
      )
    }
    return out
  }

  set(writes: TierWrite[]): Promise<void> {
    return this.op('set', async () => {
      await Promise.all(
        writes.map((w) => (w.px === undefined ? this.client.set(w.key, w.bytes) : this.client.set(w.key, w.bytes, 'PX', w.px))),
      )
      this.meter.add(Field.Sets, writes.length)
    })
  }

  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    return this.op('a conditional set', async () => {
      const ok = (await CAS_SET.run(this.client, [w.key], [expectSha1 ?? '', w.bytes, w.px === undefined ? '' : w.px])) === 1
      if (ok) this.meter.add(Field.Sets)
      return ok
    })
  }

  take(keys: string[]): Promise<(Buffer | null)[]> {
    return this.op('delete', async () => {
      const out = await this.takeRaw(keys)
      this.meter.add(Field.Deletes, out.filter((v) => v !== null).length)
      return out
    })
  }

  private async takeRaw(keys: string[]): Promise<(Buffer | null)[]> {
    const out: (Buffer | null)[] = new Array(keys.length).fill(null)
    {
      await Promise.all(
        groupBySlot(keys, this.cluster).flatMap((group) =>
          chunk(group, 512).map(async (part) => {
            const values = (await TAKE.run(this.client, part.map((i) => keys[i] as string), [])) as (Buffer | null)[]
            part.forEach((i, j) => (out[i] = values[j] ?? null))
          }),
        ),
      )
    }
    return out
  }

  async counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    if (op === 'bump') {
      return this.op('invalidateTags', async () => {
        await Promise.all(keys.map((k) => BUMP_COUNTER.run(this.client, [k], [randomCounterStart()])))
        return keys.map(() => null)
      })
    }
    const raw = await this.op('reading tag epochs', () => this.mgetRaw(keys))
    const out = raw.map((b) => (b === null ? null : Number(b.toString('latin1'))))
    if (op === 'read') return out
    try {
      await Promise.all(
        out.map(async (v, i) => {
          if (v !== null) return
          const r = (await INIT_COUNTER.run(this.client, [keys[i] as string], [randomCounterStart()])) as Buffer
          out[i] = Number(r.toString('latin1'))
        }),
      )
    } catch (err) {
      throw wrapRedisError(err, 'reading tag epochs', lastConnectionError(this.client))
    }
    return out
  }

  lock(key: string, token: string, px: number): Promise<boolean> {
    return this.op('a stampede lock', async () => (await this.client.set(key, token, 'PX', px, 'NX')) === 'OK')
  }

  unlock(key: string, token: string): Promise<void> {
    return this.op('a stampede lock release', async () => {
      await RELEASE_LOCK.run(this.client, [key], [token])
    })
  }

  deletePrefixes(prefixes: string[]): Promise<number> {
    return this.op('a prefix delete', async () => {
      const nodes: Redis[] = this.cluster ? (this.client as Cluster).nodes('master') : [this.client as Redis]
      const counts = await Promise.all(nodes.flatMap((node) => prefixes.map((p) => this.scanDelete(node, `${globEscape(p)}*`))))
      const n = counts.reduce((a, b) => a + b, 0)
      this.meter.add(Field.Deletes, n)
      return n
    })
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
