import type { Cluster, Redis } from 'ioredis'
import { Field } from '../observability/stats.js'
import type { Meter } from '../observability/stats.js'
import type { CounterOp, Tier, TierWrite } from '../tiers/tier.js'
import type { CircuitBreaker } from './circuit_breaker.js'
import { L2Policy } from './failure_policy.js'
import { GetBatcher } from './get_batcher.js'
import type { BatchPlanner } from './get_batcher.js'
import { L2CommandError } from '../errors.js'
import { bulkValues, ClusterKeyReader, prefixesKeys } from './key_routing.js'
import { ClusterNodeReader } from './node_reads.js'
import { prefixGlob, scanNode } from './scan.js'
import { GCRA, gcraWaitMs } from '../access/gcra.js'
import { BUMP_COUNTER, CAS_SET, INIT_COUNTER, randomCounterStart, RELEASE_LOCK, TAKE } from './scripts.js'
import { scatterBySlot, slotBatches } from './slots.js'

/** Most keys in one MGET, TAKE or UNLINK; larger requests are split so one reply stays small. */
export const MAX_KEYS_PER_COMMAND = 512

/** L2 over one ioredis client, standalone or Cluster. Every command runs under the L2 failure policy. */
export class RedisTier implements Tier {
  readonly cluster: boolean
  private readonly batcher: GetBatcher | undefined
  /** Breaker, gate, deadline and error mapping of every command (failure_policy.ts). */
  readonly policy: L2Policy

  constructor(
    readonly client: Redis | Cluster,
    private readonly owned: boolean,
    batchGets: boolean | undefined,
    private readonly meter: Meter,
    maxInFlight = 10_000,
    /** Opens on repeated failures; undefined = no breaker. */
    breaker?: CircuitBreaker,
    /** A deadline for operations on a client nearcache did not create (its own clients have ioredis' commandTimeout). */
    timeoutMs?: number,
    /** On a Cluster: batched gets read one script per master (node_reads.ts); batching defaults to on with it. */
    clusterReadScript = true,
  ) {
    this.policy = new L2Policy(client, owned, meter, maxInFlight, breaker, timeoutMs)
    this.cluster = (client as Cluster).isCluster === true
    // With a keyPrefix on the client, ioredis routes every read (key_routing.ts says why).
    const ownRouting = this.cluster && !prefixesKeys(client as Cluster)
    if (ownRouting) this.keyReader = new ClusterKeyReader(client as Cluster)
    if (ownRouting && clusterReadScript) this.nodeReader = new ClusterNodeReader(client as Cluster, MAX_KEYS_PER_COMMAND)
    const batch = batchGets ?? (!this.cluster || this.nodeReader !== undefined)
    this.batcher = batch ? new GetBatcher(this.policy, meter, this.planner()) : undefined
  }

  /** The per-node Cluster reader (clusterReadScript on a Cluster), for tests and diagnostics. */
  readonly nodeReader: ClusterNodeReader | undefined
  /** Single-key Cluster reads that a migration cannot turn into wrong misses. */
  private readonly keyReader: ClusterKeyReader | undefined

  /** How a flush of batched gets is split into commands. */
  private planner(): BatchPlanner {
    const reader = this.nodeReader
    if (reader) return (keys) => reader.plan(keys).map((g) => ({ idx: g.idx, read: (part) => reader.read(g.node, part) }))
    const keyReader = this.keyReader
    const read = keyReader ? (part: string[]) => keyReader.readSlot(part) : (part: string[]) => this.mgetChecked(part)
    return (keys) => slotBatches(keys, this.cluster, MAX_KEYS_PER_COMMAND).map((idx) => ({ idx, read }))
  }

  /** MGET, its reply checked: exactly one value or nil per key. */
  private async mgetChecked(keys: string[]): Promise<(Buffer | null)[]> {
    const values = bulkValues(await this.client.mgetBuffer(keys), keys.length)
    if (values === undefined) throw new L2CommandError(`Redis answered MGET of ${keys.length} keys with a malformed reply`)
    return values
  }

  private counted(v: Buffer | null): Buffer | null {
    this.meter.add(v === null ? Field.Misses : Field.Hits)
    return v
  }

  get(key: string, fresh?: boolean): Promise<Buffer | null> {
    if (fresh) return this.policy.run('get', () => this.getOne(key))
    // Batched: the policy runs once per batch, in the batcher.
    if (this.batcher) return this.batcher.get(key)
    return this.policy.run('get', async () => this.counted(await this.getOne(key)))
  }

  peek(): undefined {
    return undefined
  }

  private async getOne(key: string): Promise<Buffer | null> {
    // On a Cluster, routed by the slot map, not by ioredis' auto-pipelines (key_routing.ts says why).
    if (this.keyReader) return this.keyReader.read(key)
    // MGET even for one key: unlike GET it answers nil for a key of another type.
    return (await this.mgetChecked([key]))[0] as Buffer | null
  }

  mget(keys: string[]): Promise<(Buffer | null)[]> {
    return this.policy.run('mget', async () => (await this.mgetRaw(keys)).map((v) => this.counted(v)))
  }

  private mgetRaw(keys: string[]): Promise<(Buffer | null)[]> {
    const keyReader = this.keyReader
    return scatterBySlot(keys, this.cluster, MAX_KEYS_PER_COMMAND, null, keyReader ? (part) => keyReader.readSlot(part) : (part) => this.mgetChecked(part))
  }

  set(writes: TierWrite[]): Promise<void> {
    return this.policy.run('set', async () => {
      await Promise.all(
        writes.map((w) => (w.px === undefined ? this.client.set(w.key, w.bytes) : this.client.set(w.key, w.bytes, 'PX', w.px))),
      )
      this.meter.add(Field.Sets, writes.length)
    })
  }

  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    return this.policy.run('a conditional set', async () => {
      const ok = (await CAS_SET.run(this.client, [w.key], [expectSha1 ?? '', w.bytes, w.px === undefined ? '' : w.px])) === 1
      if (ok) this.meter.add(Field.Sets)
      return ok
    })
  }

  take(keys: string[]): Promise<(Buffer | null)[]> {
    return this.policy.run('delete', async () => {
      const out = await scatterBySlot(keys, this.cluster, MAX_KEYS_PER_COMMAND, null, async (part) => (await TAKE.run(this.client, part, [])) as (Buffer | null)[])
      this.meter.add(Field.Deletes, out.filter((v) => v !== null).length)
      return out
    })
  }

  counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    if (op === 'bump') {
      return this.policy.run('invalidateTags', async () => {
        await Promise.all(keys.map((k) => BUMP_COUNTER.run(this.client, [k], [randomCounterStart()])))
        return keys.map(() => null)
      })
    }
    // One operation, the creation of missing counters included: one gate slot, one deadline.
    return this.policy.run('reading tag epochs', async () => {
      const out = (await this.mgetRaw(keys)).map((b) => (b === null ? null : Number(b.toString('latin1'))))
      if (op === 'init') {
        await Promise.all(
          out.map(async (v, i) => {
            if (v !== null) return
            const r = (await INIT_COUNTER.run(this.client, [keys[i] as string], [randomCounterStart()])) as Buffer
            out[i] = Number(r.toString('latin1'))
          }),
        )
      }
      return out
    })
  }

  lock(key: string, token: string, px: number): Promise<boolean> {
    return this.policy.run('a stampede lock', async () => (await this.client.set(key, token, 'PX', px, 'NX')) === 'OK')
  }

  unlock(key: string, token: string): Promise<void> {
    return this.policy.run('a stampede lock release', async () => {
      await RELEASE_LOCK.run(this.client, [key], [token])
    })
  }

  rateLimit(key: string, intervalUs: number, toleranceUs: number, cost: number): Promise<number> {
    return this.policy.run('a rate limit', async () => gcraWaitMs(await GCRA.run(this.client, [key], [intervalUs, toleranceUs, cost])))
  }

  /**
   * SCANs every master for each prefix and UNLINKs what matches, one command per
   * slot (through the routing client). Each SCAN step and each UNLINK is its own
   * operation under the policy: a large namespace takes many deadlines, not one.
   */
  async deletePrefixes(prefixes: string[]): Promise<number> {
    const nodes: Redis[] = this.cluster ? (this.client as Cluster).nodes('master') : [this.client as Redis]
    const step = <T>(fn: () => Promise<T>) => this.policy.run('a prefix delete', fn)
    const counts = await Promise.all(nodes.flatMap((node) => prefixes.map((p) => this.scanDelete(node, prefixGlob(p), step))))
    const n = counts.reduce((a, b) => a + b, 0)
    this.meter.add(Field.Deletes, n)
    return n
  }

  private async scanDelete(node: Redis, match: string, step: <T>(fn: () => Promise<T>) => Promise<T>): Promise<number> {
    let removed = 0
    for await (const keys of scanNode(node, match, step)) {
      const counts = await Promise.all(
        slotBatches(keys, this.cluster, MAX_KEYS_PER_COMMAND).map((b) => step(() => this.client.unlink(...b.map((i) => keys[i] as string)))),
      )
      removed += counts.reduce((a, b) => a + b, 0)
    }
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
