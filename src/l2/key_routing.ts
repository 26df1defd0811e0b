import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import { L2CommandError } from '../errors.js'
import { NodeMgets } from './node_mgets.js'

/** A reply that is exactly `n` values, each bytes or nil; undefined when it is anything else. */
export function bulkValues(reply: unknown, n: number): (Buffer | null)[] | undefined {
  if (!Array.isArray(reply) || reply.length !== n) return undefined
  for (const v of reply) if (v !== null && !Buffer.isBuffer(v)) return undefined
  return reply as (Buffer | null)[]
}

/**
 * Whether the Cluster client prefixes key names (ioredis `keyPrefix`): then nearcache
 * neither computes slots nor sends to nodes itself (the slots would be those of the
 * unprefixed names, and the script's ARGV are not prefixed); ioredis routes.
 */
export function prefixesKeys(cluster: Cluster): boolean {
  const o = cluster.options as { keyPrefix?: unknown; redisOptions?: { keyPrefix?: unknown } }
  return Boolean(o.keyPrefix || o.redisOptions?.keyPrefix)
}

/** A node's name in ioredis' slot map and connection pool. */
export function nodeName(r: Redis): string {
  return `${r.options.host}:${r.options.port}`
}

/**
 * Reads of one slot's keys on a Cluster, routed by nearcache rather than by ioredis:
 * one MGET sent to the slot's owner in ioredis' slot map, following up to two MOVED
 * or ASK. Not through the Cluster's own routing, because its auto-pipelines,
 * on an ASK for some of their commands, resend EVERY command of the pipeline to the
 * importing node after ASKING, where keys of the migrating slot that have not moved
 * yet read as nil: a wrong miss (cluster_reads_migration.test.ts saw thousands with
 * the routing; none with this). They also reject a pipeline whose slots changed
 * owner before it was sent, and do not follow a MOVED in a pipeline of mixed failures.
 * Only when the map names no live owner (not connected yet, the node's connection
 * gone in a failover) does a read go through the routing, which then refreshes.
 */
export class ClusterKeyReader {
  /** The tick's MGETs per node, one write each. */
  private readonly mgets = new NodeMgets()

  constructor(private readonly cluster: Cluster) {}

  /** The master connection the slot map names for `slot`, if it is in the pool. */
  owner(slot: number, masters?: ReadonlyMap<string, Redis>): Redis | undefined {
    const name = this.cluster.slots[slot]?.[0]
    if (name === undefined) return undefined
    if (masters) return masters.get(name)
    return this.cluster.nodes('master').find((r) => nodeName(r) === name)
  }

  /** The value of `k` (nil when missing or of another type), from `node` or the owner of its slot. */
  async read(k: string, node?: Redis): Promise<Buffer | null> {
    return (await this.readSlot([k], node))[0] as Buffer | null
  }

  /**
   * The values of `keys`, all of one slot, by one MGET (from `node` or the slot's
   * owner). A slot in migration answers a multi-key read TRYAGAIN while its keys are
   * split between the nodes: then each key is read on its own.
   */
  async readSlot(keys: string[], node: Redis | undefined = this.owner(calculateSlot(keys[0] as string))): Promise<(Buffer | null)[]> {
    let reply: unknown
    try {
      reply = node === undefined ? await this.cluster.mgetBuffer(keys) : await this.fromNode(keys, node, false, 2)
    } catch (err) {
      if (keys.length === 1 || !(err instanceof Error) || !err.message.startsWith('TRYAGAIN')) throw err
      return Promise.all(keys.map((k) => this.read(k)))
    }
    const v = bulkValues(reply, keys.length)
    if (v === undefined) throw new L2CommandError(`Redis answered MGET of ${keys.length} keys with a malformed reply`)
    return v
  }

  /**
   * Reads `keys` on `node` (after ASKING, back to back in one pipeline, when `asking`).
   * A node answers only for a slot it serves (or imports, when asked with ASKING), so
   * a redirection names where to go next: MOVED (the map is stale: ioredis is asked
   * to refresh it) or ASK (the keys have left a migrating slot). Up to `hops` of them,
   * to nodes in ioredis' pool (masters); otherwise the redirection is the failure
   * (E_L2_UNAVAILABLE), and the next read finds the refreshed map.
   */
  private async fromNode(keys: string[], node: Redis, asking: boolean, hops: number): Promise<unknown> {
    try {
      return await this.mgets.mget(node, keys, asking)
    } catch (err) {
      const to = err instanceof Error ? /^(ASK|MOVED) \d+ (\S+)$/.exec(err.message) : null
      if (to === null) throw err
      if (to[1] === 'MOVED') this.cluster.refreshSlotsCache()
      // A node ioredis has no connection to (a replica just promoted) is known after the refresh.
      const next = hops > 0 ? this.cluster.nodes('all').find((r) => nodeName(r) === to[2]) : undefined
      if (next === undefined) throw err
      return this.fromNode(keys, next, to[1] === 'ASK', hops - 1)
    }
  }
}
