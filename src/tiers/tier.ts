/**
 * A tier stores envelope bytes under full keys (`<namespace>:<key>`). The cache
 * facade owns everything above bytes: validation, encoding, TTL, tags. L2 (Redis,
 * Redis Cluster) and the process-local memory tier implement the same contract, so
 * an L1 slots in front of L2 without changing the public API.
 */
export interface TierWrite {
  key: string
  bytes: Buffer
  /** Time to live in ms; undefined = no expiry. */
  px: number | undefined
}

export interface Tier {
  /** One key; reads issued in the same tick may be coalesced. May answer from L1. */
  get(key: string): Promise<Buffer | null>
  /**
   * Synchronous answer from memory when there is one: bytes, null (known missing),
   * or undefined when only `fetch` can tell. The L1 hit path never awaits.
   */
  peek(key: string): Buffer | null | undefined
  /** `get` for a key `peek` just answered undefined for. */
  fetch(key: string): Promise<Buffer | null>
  /** One key from the authoritative tier (never an L1 copy): what conditional writes decide on. */
  getFresh(key: string): Promise<Buffer | null>
  /**
   * Many keys, answers in key order. Never fails with CROSSSLOT. A tier with an L1
   * sets `fromL1[i] = true` for the answers L1 gave (for the namespace counters).
   */
  mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]>
  set(writes: TierWrite[]): Promise<void>
  /**
   * Writes `w` only if the key still holds bytes whose SHA-1 is `expectSha1`
   * (or, when `expectSha1` is null, only if the key is absent). Atomic.
   */
  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean>
  /** Removes the keys; answers what each held (null when absent). */
  take(keys: string[]): Promise<(Buffer | null)[]>
  /**
   * Reads integer counters (tag epochs); null where a counter does not exist. With
   * `init`, a missing counter is first created, atomically, with a random value, so
   * a counter that was lost (evicted, deleted) never comes back with an old value.
   */
  readCounters(keys: string[], init: boolean): Promise<(number | null)[]>
  /** Atomically increments counters (tag epochs). */
  bumpCounters(keys: string[]): Promise<void>
  /** Takes a lock key for `px` ms if nobody holds it (SET NX PX); answers whether we got it. */
  acquireLock(key: string, token: string, px: number): Promise<boolean>
  /** Releases a lock we hold (only if it still carries our token). */
  releaseLock(key: string, token: string): Promise<void>
  /** Removes every key starting with one of the prefixes; answers how many. */
  deletePrefixes(prefixes: string[]): Promise<number>
  close(): Promise<void>
}
