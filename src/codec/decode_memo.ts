import type { KeyRef } from '../l1/key_ref.js'
import { RecordStamp } from '../l1/table_index.js'
import { deepFreeze, isJsonLike } from './deep_freeze.js'
import type { Envelope } from './envelope.js'
import { clonePlain, isPlainTree } from './plain_tree.js'
import { shapeCloner } from './shape_clone.js'
import type { Cloner } from './shape_clone.js'

export { clonePlain, isPlainTree }

/**
 * Per-thread memo of decoded values, keyed by entry key. An entry is found two ways:
 * - from L1, by the stamp of the record it was made from (RecordStamp: slot,
 *   sequence word, offset, length, deadline), which the table checks while it
 *   probes, so a hit copies no bytes at all (SharedTable.lookup with `known`);
 * - from anywhere else (L2 answers, a record moved in L1), by the exact stored bytes.
 * A hit hands the caller a copy of the memoized value made by a cloner compiled for
 * its shape (shape_clone.ts; ~35 ns for a 150-byte object) or clonePlain, instead of
 * a msgpackr decode (~2.4 µs, bench/l1_hit); with l1.shareValues, a JSON-like value
 * is frozen once and handed out as is. Only values made of plain objects, arrays,
 * primitives, Date, Map, Set and Uint8Array/Buffer with no shared or cyclic
 * references qualify: for them the clone is exactly what a decode would produce.
 * Everything else is decoded every time.
 */
export class Memo {
  /** The table's ref of the key (made by the L1 tier on first use): saves encoding and hashing the key per lookup. */
  ref: KeyRef | undefined = undefined
  /** The namespace it is indexed under (DecodeMemo.get), if any. */
  ns: string | undefined = undefined
  /** The L1 record this memo was made from or last matched (slot -1: none). */
  readonly stamp = new RecordStamp()

  constructor(
    /** The full key (`<namespace>:<key>`). */
    readonly key: string,
    readonly bytes: Uint8Array,
    readonly env: Envelope,
    /** Never handed out, except when `shared` (deep-frozen). */
    readonly value: unknown,
    /** Copies `value`: the shape's compiled cloner or clonePlain. */
    readonly clone: Cloner,
    /** `value` is deep-frozen JSON-like data: handed out as is (l1.shareValues). */
    readonly shared: boolean,
  ) {}

  /** What a caller gets: the shared frozen value, or its own copy. */
  copy(): unknown {
    return this.shared ? this.value : this.clone(this.value)
  }
}

const MAX_ENTRIES = 4096
const MAX_BYTES = 8 * 1024 * 1024

export class DecodeMemo {
  private readonly map = new Map<string, Memo>()
  /**
   * The same entries by namespace, then the caller's key: get() finds a memo from
   * the strings the caller holds (whose hashes V8 keeps), without building and
   * hashing the full key. Maintained with `map`, namespaces given to remember().
   */
  private readonly byNs = new Map<string, Map<string, Memo>>()
  private bytes = 0
  /**
   * Keys decoded once recently. A key is memoized only on its second decode, so a
   * cold working set larger than the memo pays one Map write per read, not the
   * plain-data check and clone (bench/goals showed those cost more than they save
   * when nothing is read twice). With shareValues a JSON-like value is memoized on
   * its first decode: it is frozen (every value handed out is), and there is no clone to save.
   */
  private seen = new Set<string>()

  /**
   * The memos of namespace `ns` by the caller's key (without the namespace),
   * whatever they were made from (the L1 tier checks their stamps). Kept up to date
   * by remember(); a cache object takes its namespace's once.
   */
  index(ns: string): ReadonlyMap<string, Memo> {
    let inNs = this.byNs.get(ns)
    if (inNs === undefined) this.byNs.set(ns, (inNs = new Map()))
    return inNs
  }

  /** The memo for `key` when `raw` is byte-for-byte what it was made from. */
  find(key: string, raw: Uint8Array): Memo | undefined {
    const m = this.map.get(key)
    if (m === undefined) return undefined
    if (m.bytes.length === raw.length && Buffer.compare(m.bytes, raw) === 0) return m
    return undefined
  }

  /**
   * Remembers `value` (which must then not be handed to anyone but through the
   * memo's copy()) if it is plain data and was decoded before (with `share`, a
   * JSON-like value at once, frozen); answers the memo, or undefined when it did
   * not keep the value. `stamp`: the L1 record `raw` was read from.
   */
  remember(key: string, raw: Uint8Array, env: Envelope, value: unknown, stamp?: RecordStamp, share = false, ns?: string): Memo | undefined {
    if (raw.length > MAX_BYTES / 16) return undefined
    const first = !this.seen.has(key)
    if (first && !share) return this.note(key)
    if (!isPlainTree(value)) return undefined
    const shared = share && isJsonLike(value)
    if (first && !shared) return this.note(key)
    if (shared) deepFreeze(value)
    const m = new Memo(key, raw, env, value, shared ? clonePlain : (shapeCloner(value) ?? clonePlain), shared)
    if (stamp !== undefined) m.stamp.copyFrom(stamp)
    const old = this.map.get(key)
    if (old) this.drop(old)
    while (this.map.size >= MAX_ENTRIES || this.bytes + raw.length > MAX_BYTES) this.drop(this.map.values().next().value as Memo)
    this.map.set(key, m)
    this.bytes += raw.length
    if (ns !== undefined && key.length > ns.length && key.startsWith(ns) && key.charCodeAt(ns.length) === 58) {
      m.ns = ns
      ;(this.index(ns) as Map<string, Memo>).set(key.slice(ns.length + 1), m)
    }
    return m
  }

  private drop(m: Memo): void {
    this.map.delete(m.key)
    this.bytes -= m.bytes.length
    if (m.ns === undefined) return
    ;(this.byNs.get(m.ns) as Map<string, Memo>).delete(m.key.slice(m.ns.length + 1))
  }

  private note(key: string): undefined {
    if (this.seen.size >= MAX_ENTRIES * 2) this.seen = new Set()
    this.seen.add(key)
    return undefined
  }
}
