import type { Tier, TierWrite } from './tier.js'
import type { InvalidationBus } from '../l2/invalidation_bus.js'

/** An L2 tier that announces every change it makes on the invalidation bus. */
export class AnnouncingTier implements Tier {
  constructor(
    private readonly l2: Tier,
    private readonly bus: InvalidationBus,
  ) {}

  get(key: string) {
    return this.l2.get(key)
  }
  peek(key: string) {
    return this.l2.peek(key)
  }
  fetch(key: string) {
    return this.l2.fetch(key)
  }
  getFresh(key: string) {
    return this.l2.getFresh(key)
  }
  mget(keys: string[]) {
    return this.l2.mget(keys)
  }
  readCounters(keys: string[], init: boolean) {
    return this.l2.readCounters(keys, init)
  }
  acquireLock(key: string, token: string, px: number) {
    return this.l2.acquireLock(key, token, px)
  }
  releaseLock(key: string, token: string) {
    return this.l2.releaseLock(key, token)
  }
  async set(writes: TierWrite[]): Promise<void> {
    try {
      await this.l2.set(writes)
    } finally {
      this.bus.announce(writes.map((w) => w.key))
    }
  }
  async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    const ok = await this.l2.casSet(w, expectSha1)
    if (ok) this.bus.announce([w.key])
    return ok
  }
  async take(keys: string[]): Promise<(Buffer | null)[]> {
    try {
      return await this.l2.take(keys)
    } finally {
      this.bus.announce(keys)
    }
  }
  async bumpCounters(keys: string[]): Promise<void> {
    try {
      await this.l2.bumpCounters(keys)
    } finally {
      this.bus.announce(keys)
    }
  }
  async deletePrefixes(prefixes: string[]): Promise<number> {
    try {
      return await this.l2.deletePrefixes(prefixes)
    } finally {
      this.bus.announce([], prefixes)
    }
  }
  async close(): Promise<void> {
    await this.bus.close()
    await this.l2.close()
  }
}
