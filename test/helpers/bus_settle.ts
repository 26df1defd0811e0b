import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { NearCache } from '../../src/index.js'
import { channelFor } from '../../src/keys.js'
import type { BusSigner } from '../../src/l2/bus_signer.js'
import type { InvalidationNotice } from '../../src/l2/invalidation_bus.js'
import { until } from './wait.js'

/**
 * Publishes `texts` on `c`'s invalidation channel, then a valid message of a
 * publisher of its own (signed by `settler` when given), and waits until `c`
 * applied that one: Redis delivers one channel's messages in order, so every
 * earlier message was handled by then. It waits for the bus's own notice, not
 * for an L1 copy to go: a flush the texts cause may drop a copy at any moment.
 */
export async function publishAndSettle(c: NearCache, r: Redis, texts: string[], settler?: BusSigner): Promise<void> {
  const publisher = `settle-${randomUUID().slice(0, 8)}`
  let settled = false
  const onNotice = (n: InvalidationNotice) => {
    if (n.direction === 'received' && n.publisher === publisher) settled = true
  }
  c.on('invalidation', onNotice)
  try {
    const ch = channelFor(c.prefix)
    for (const t of texts) await r.publish(ch, t)
    const settle = JSON.stringify({ v: 1, o: publisher, s: 0, k: [`${c.prefix}:settle`] })
    await r.publish(ch, settler ? settler.sign(ch, settle) : settle)
    await until('the settling message', () => settled)
  } finally {
    c.off('invalidation', onNotice)
  }
}
