import type { SharedTable } from '../l1/shared_table.js'
import type { InvalidationBus } from '../l2/invalidation_bus.js'
import type { ResolvedOptions } from '../options/options.js'
import type { StatsBlock } from '../observability/stats.js'
import { AnnouncingTier } from './announcing.js'
import { EncryptingTier } from './encrypting.js'
import type { CorruptEntryError } from '../errors.js'
import type { EntryCipher } from '../security/entry_cipher.js'
import { L1OnlyTier } from './l1_only.js'
import type { Tier } from './tier.js'
import { TieredStore } from './tiered.js'
import { WriteBehindTier } from './write_behind.js'
import type { WriteBehindTierOptions } from './write_behind.js'

/**
 * The tier stacks, composed here and nowhere else. Bottom to top:
 *
 *   L2, owner thread:    RedisTier → AnnouncingTier (invalidation on) → WriteBehindTier (writeBehind on)
 *                        → EncryptingTier (encryption on: everything below holds sealed bytes)
 *   L2, attached thread: RemoteTier (to the owner's L2 stack, through its TierServer)
 *   the cache's tier:    TieredStore(L1 table, L2)   with L1 and L2
 *                        L1OnlyTier(L1 table)        redis: false
 *                        L2                          l1: false
 */
export interface EncryptionLayer {
  cipher: EntryCipher
  /** Called for each stored entry that does not open (a miss): count it and emit it. */
  onCorrupt: (err: CorruptEntryError) => void
}

export async function composeL2(redis: Tier, layers: { bus?: InvalidationBus; writeBehind?: WriteBehindTierOptions; encryption?: EncryptionLayer }): Promise<Tier> {
  let l2: Tier = redis
  if (layers.bus) l2 = new AnnouncingTier(l2, layers.bus)
  if (layers.writeBehind) {
    const inner = l2
    l2 = await WriteBehindTier.open(inner, layers.writeBehind).catch(async (err: unknown) => {
      await inner.close().catch(() => {})
      throw err
    })
  }
  if (layers.encryption) l2 = new EncryptingTier(l2, layers.encryption.cipher, layers.encryption.onCorrupt)
  return l2
}

export interface ComposedTier {
  tier: Tier
  /** Whether answers from `peek` (and `mget`'s fromL1) come from the L1 table. */
  hasL1: boolean
}

/** The tier a cache reads and writes: L1 in front of L2, either alone. */
export function composeCacheTier(opts: ResolvedOptions, table: SharedTable | undefined, l2: Tier | undefined, stats: StatsBlock): ComposedTier {
  if (!l2) return { tier: new L1OnlyTier(table as SharedTable, opts.clock, stats.l1), hasL1: true }
  if (table && opts.l1) {
    const { negativeTtl, ttl: l1Ttl, maxEntryBytes, ttlJitter } = opts.l1
    return { tier: new TieredStore(table, l2, opts.clock, { negativeTtl, l1Ttl, maxEntryBytes, ttlJitter }, stats.l1), hasL1: true }
  }
  return { tier: l2, hasL1: false }
}
