import { inNamespace } from '../keys.js'
import { TierLayer } from './layer.js'
import type { CounterOp, Tier, TierWrite } from './tier.js'
import { WriteBehind } from '../wal/write_behind.js'
import type { WriteBehindOptions } from '../wal/write_behind.js'

/** The write-behind engine's options, less what the tier supplies; `namespace` limits replay to that namespace. */
export type WriteBehindTierOptions = Omit<WriteBehindOptions, 'flush' | 'accept'> & { namespace?: string }

/**
 * L2 with write-behind: a `set` is acknowledged once it is in the local
 * write-ahead log and is flushed to Redis in ordered batches afterwards. Reads
 * see acknowledged writes that are not flushed yet (they are answered from the
 * pending set). Operations whose result depends on what Redis holds (deletes,
 * conditional writes, tag and prefix invalidation) first wait for the queue to
 * drain, so a queued write can never undo them. `close()` drains.
 */
export class WriteBehindTier extends TierLayer {
  /** Acknowledged, not yet flushed: key → its latest bytes. */
  private readonly pending = new Map<string, TierWrite>()

  private constructor(
    inner: Tier,
    private readonly wb: WriteBehind,
  ) {
    super(inner)
  }

  /**
   * Opens the log and replays it into `l2`. With `namespace`, replay writes only that
   * namespace's keys (`<ns>:...` and its tag epochs); records of other keys go to the
   * dead-letter file.
   */
  static async open(l2: Tier, opts: WriteBehindTierOptions): Promise<WriteBehindTier> {
    let self: WriteBehindTier | undefined
    // Forget what Redis now has (or will never have), unless a later write of the key is still queued.
    // (Queued writes are copies of the caller's; their bytes are the same Buffer.)
    const forget = (writes: readonly TierWrite[]) => {
      for (const w of writes) if (self?.pending.get(w.key)?.bytes === w.bytes) self.pending.delete(w.key)
    }
    const flush = async (writes: TierWrite[]) => {
      await l2.set(writes)
      forget(writes)
    }
    const { namespace, onDeadLetters, ...rest } = opts
    const accept = namespace === undefined ? undefined : (key: string) => inNamespace(key, namespace)
    const wb = await WriteBehind.open({
      ...rest,
      flush,
      accept,
      onDeadLetters: (writes, fileBytes) => {
        forget(writes)
        onDeadLetters?.(writes, fileBytes)
      },
    })
    self = new WriteBehindTier(l2, wb)
    return self
  }

  get depth(): number {
    return this.wb.depth
  }

  private queued(key: string): Buffer | null | undefined {
    const w = this.pending.get(key)
    return w === undefined ? undefined : w.bytes
  }

  override peek(key: string): Buffer | null | undefined {
    const q = this.queued(key)
    return q !== undefined ? q : this.inner.peek(key)
  }
  override async get(key: string, fresh?: boolean): Promise<Buffer | null> {
    if (fresh) {
      await this.wb.drain()
      return this.inner.get(key, true)
    }
    const q = this.queued(key)
    return q !== undefined ? q : this.inner.get(key)
  }
  override async mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]> {
    const out = await this.inner.mget(keys, fromL1)
    return out.map((v, i) => {
      const q = this.queued(keys[i] as string)
      return q !== undefined ? q : v
    })
  }
  override async set(writes: TierWrite[]): Promise<void> {
    await this.wb.enqueue(writes)
    for (const w of writes) this.pending.set(w.key, w)
  }
  override async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    await this.wb.drain()
    return this.inner.casSet(w, expectSha1)
  }
  override async take(keys: string[]): Promise<(Buffer | null)[]> {
    await this.wb.drain()
    return this.inner.take(keys)
  }
  override async counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    if (op === 'bump') await this.wb.drain()
    return this.inner.counters(keys, op)
  }
  override async deletePrefixes(prefixes: string[]): Promise<number> {
    await this.wb.drain()
    return this.inner.deletePrefixes(prefixes)
  }
  override async close(): Promise<void> {
    await this.wb.close()
    await this.inner.close()
  }
}
