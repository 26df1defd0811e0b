import type { CounterOp, Tier, TierWrite } from './tier.js'

/**
 * A tier in front of another: every call passes through unchanged. A layer
 * (L1 in front of L2, announcements, write-behind) overrides only the calls it
 * changes, so what a layer does is exactly what its class body shows.
 */
export class TierLayer implements Tier {
  constructor(protected readonly inner: Tier) {}

  peek(key: string): Buffer | null | undefined {
    return this.inner.peek(key)
  }
  get(key: string, fresh?: boolean): Promise<Buffer | null> {
    return this.inner.get(key, fresh)
  }
  mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]> {
    return this.inner.mget(keys, fromL1)
  }
  set(writes: TierWrite[]): Promise<void> {
    return this.inner.set(writes)
  }
  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    return this.inner.casSet(w, expectSha1)
  }
  take(keys: string[]): Promise<(Buffer | null)[]> {
    return this.inner.take(keys)
  }
  counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    return this.inner.counters(keys, op)
  }
  lock(key: string, token: string, px: number): Promise<boolean> {
    return this.inner.lock(key, token, px)
  }
  unlock(key: string, token: string): Promise<void> {
    return this.inner.unlock(key, token)
  }
  deletePrefixes(prefixes: string[]): Promise<number> {
    return this.inner.deletePrefixes(prefixes)
  }
  rateLimit(key: string, intervalUs: number, toleranceUs: number, cost: number): Promise<number> {
    if (!this.inner.rateLimit) return Promise.reject(new Error('this tier has no distributed rate limit'))
    return this.inner.rateLimit(key, intervalUs, toleranceUs, cost)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}
