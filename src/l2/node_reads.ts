import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import { ClusterKeyReader, bulkValues, nodeName } from './key_routing.js'
import { READ_KEYS } from './scripts.js'

/**
 * Script errors that say this server will never run the read script (older than
 * 7.0, shebang flags unknown, scripting disabled or not permitted): the script is
 * turned off for the client and every read goes per key.
 */
const UNSUPPORTED = /Error compiling script|Unexpected flag|shebang|unknown command|NOPERM.*'eval(sha)?'/i

/** A node that did not answer in time is not asked again per key: the deadline is spent. */
const TIMED_OUT = /timed out/i

/** What the per-node reads did, for tests and diagnostics. */
export interface NodeReadCounts {
  /** Batches answered by the script. */
  scriptBatches: number
  /** Batches (or parts of one) read per key instead: refused, redirected, malformed, or no known owner. */
  fallbackBatches: number
  /** Keys read per key instead of by the script. */
  fallbackKeys: number
}

/** One group of a flush: key indexes whose slots one master serves (per the slot map), or none known. */
export interface NodeGroup {
  node: Redis | undefined
  idx: number[]
}

/**
 * Per-node Cluster reads: a flush's keys grouped by the master that owns their slot
 * in ioredis' slot map, each group read with ONE read-only script sent to that
 * master's connection (READ_KEYS). The script is trusted only as far as the node
 * answers it: a node serves a key only from a slot it owns and holds the key in
 * (MIGRATING: a key not there any more is refused; IMPORTING without ASKING:
 * refused), so a stale map, a migration or a failover makes the node refuse the
 * script, and the group is read per key (ClusterKeyReader), following MOVED and
 * ASK. The script writes nothing, so a mistake can only cost its round trip.
 */
export class ClusterNodeReader {
  /** Off for this client: a server that cannot run it (or a user without the permission). */
  disabled = false
  readonly counts: NodeReadCounts = { scriptBatches: 0, fallbackBatches: 0, fallbackKeys: 0 }
  private readonly keys: ClusterKeyReader

  constructor(
    private readonly cluster: Cluster,
    /** Most keys in one script call. */
    private readonly max: number,
  ) {
    this.keys = new ClusterKeyReader(cluster)
  }

  /** Groups `keys` (by index) by owning master, at most `max` per group. */
  plan(keys: readonly string[]): NodeGroup[] {
    const byKey = new Map<string, Redis>()
    for (const r of this.cluster.nodes('master')) byKey.set(nodeName(r), r)
    const groups = new Map<string, number[]>()
    const slots = this.cluster.slots
    for (let i = 0; i < keys.length; i++) {
      const owner = slots[calculateSlot(keys[i] as string)]?.[0]
      const name = owner !== undefined && byKey.has(owner) ? owner : ''
      const g = groups.get(name)
      if (g) g.push(i)
      else groups.set(name, [i])
    }
    const out: NodeGroup[] = []
    for (const [name, idx] of groups) {
      const node = name === '' ? undefined : byKey.get(name)
      for (let i = 0; i < idx.length; i += this.max) out.push({ node, idx: idx.length <= this.max ? idx : idx.slice(i, i + this.max) })
    }
    return out
  }

  /** The values of `keys` (one group of `plan`), in order. */
  async read(node: Redis | undefined, keys: string[]): Promise<(Buffer | null)[]> {
    if (node !== undefined && !this.disabled) {
      const values = await this.script(node, keys)
      if (values !== undefined) {
        this.counts.scriptBatches++
        return values
      }
    }
    this.counts.fallbackBatches++
    this.counts.fallbackKeys += keys.length
    return this.perKey(node, keys)
  }

  /** The script's answer, or undefined when the node refused it or answered something else. */
  private async script(node: Redis, keys: string[]): Promise<(Buffer | null)[] | undefined> {
    let reply: unknown
    try {
      // EVALSHA; on NOSCRIPT, one EVAL (which also loads it).
      reply = await READ_KEYS.run(node, [], keys)
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (TIMED_OUT.test(message)) throw err
      if (UNSUPPORTED.test(message)) this.disabled = true
      return undefined
    }
    return bulkValues(reply, keys.length)
  }

  /** One read per key, routed by the slot map (key_routing.ts), following MOVED and ASK. */
  private perKey(node: Redis | undefined, keys: string[]): Promise<(Buffer | null)[]> {
    return Promise.all(keys.map((k) => this.keys.read(k, node)))
  }
}
