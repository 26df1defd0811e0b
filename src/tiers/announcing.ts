import type { InvalidationBus } from '../l2/invalidation_bus.js'
import { TierLayer } from './layer.js'
import type { CounterOp, Tier, TierWrite } from './tier.js'

/** An L2 tier that announces every change it makes on the invalidation bus. */
export class AnnouncingTier extends TierLayer {
  constructor(
    inner: Tier,
    private readonly bus: InvalidationBus,
  ) {
    super(inner)
  }

  override async set(writes: TierWrite[]): Promise<void> {
    try {
      await this.inner.set(writes)
    } finally {
      this.bus.announce(writes.map((w) => w.key))
    }
  }
  override async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    const ok = await this.inner.casSet(w, expectSha1)
    if (ok) this.bus.announce([w.key])
    return ok
  }
  override async take(keys: string[]): Promise<(Buffer | null)[]> {
    try {
      return await this.inner.take(keys)
    } finally {
      this.bus.announce(keys)
    }
  }
  override async counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    if (op !== 'bump') return this.inner.counters(keys, op)
    try {
      return await this.inner.counters(keys, op)
    } finally {
      this.bus.announce(keys)
    }
  }
  override async deletePrefixes(prefixes: string[]): Promise<number> {
    try {
      return await this.inner.deletePrefixes(prefixes)
    } finally {
      this.bus.announce([], prefixes)
    }
  }
  override async close(): Promise<void> {
    await this.bus.close()
    await this.inner.close()
  }
}
