import type { CounterOp, Tier, TierWrite } from '../tiers/tier.js'
import type { OwnConnection } from './own_connection.js'
import type { RemoteTier } from './remote_tier.js'

/**
 * The L2 of an attached thread with `workerConnections: 'own'`: reads (`get`,
 * `mget`, `counters(…, 'read')`) go straight to Redis on the thread's own
 * connection; everything that changes L2 (writes, deletes, locks, counter init and
 * bumps, prefix deletes, rate limits) goes to the owner, which announces, audits
 * and (with write-behind) queues it in one place. While the own connection is not
 * ready, reads go to the owner too.
 *
 * Read-your-writes holds: a write resolves here only after the owner's Redis
 * accepted it, so a read sent afterwards on any connection sees it. L1 fills from
 * these reads are made by the TieredStore above, under the same epoch and trust
 * guards as any other fill.
 */
export class SplitTier implements Tier {
  constructor(
    private readonly own: OwnConnection,
    private readonly owner: RemoteTier,
  ) {}

  peek(): undefined {
    return undefined
  }

  get(key: string, fresh?: boolean): Promise<Buffer | null> {
    const t = this.own.current()
    return t ? this.own.track(t.get(key, fresh)) : this.owner.get(key, fresh)
  }

  mget(keys: string[]): Promise<(Buffer | null)[]> {
    const t = this.own.current()
    return t ? this.own.track(t.mget(keys)) : this.owner.mget(keys)
  }

  counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    const t = op === 'read' ? this.own.current() : undefined
    return t ? this.own.track(t.counters(keys, op)) : this.owner.counters(keys, op)
  }

  set(writes: TierWrite[]): Promise<void> {
    return this.owner.set(writes)
  }
  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    return this.owner.casSet(w, expectSha1)
  }
  take(keys: string[]): Promise<(Buffer | null)[]> {
    return this.owner.take(keys)
  }
  deletePrefixes(prefixes: string[]): Promise<number> {
    return this.owner.deletePrefixes(prefixes)
  }
  lock(key: string, token: string, px: number): Promise<boolean> {
    return this.owner.lock(key, token, px)
  }
  unlock(key: string, token: string): Promise<void> {
    return this.owner.unlock(key, token)
  }
  rateLimit(key: string, intervalUs: number, toleranceUs: number, cost: number): Promise<number> {
    return this.owner.rateLimit(key, intervalUs, toleranceUs, cost)
  }

  async close(): Promise<void> {
    await Promise.all([this.own.close(), this.owner.close()])
  }
}
