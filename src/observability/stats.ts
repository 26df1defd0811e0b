/**
 * Counters live in a SharedArrayBuffer so that every thread attached to a cache
 * adds to the same figures: each thread claims a row of Float64 counters and is
 * its only writer (plain increments, no atomics); `stats()` sums the rows.
 *
 * A row holds, per tier, what the tier itself counts (all namespaces together),
 * the process figures (invalidation bus, write-behind queue), and one block per
 * namespace: lookups by the tier that answered, writes, expirations, loader calls
 * and an operation-latency histogram. Namespace names are registered once in the
 * buffer, so every thread agrees on which block is whose.
 *
 * The parts: stats_layout.ts (the buffer), stats_meters.ts (what a thread counts,
 * and how), stats_names.ts (the namespace registry), stats_snapshot.ts (summing
 * rows into CacheStats), stats_types.ts (CacheStats). Import them from here.
 */
import { HEADER_WORDS, HeaderWord, L1_BASE, L2_BASE, MAX_THREAD_ROWS, nsBase, PROC_BASE, ROW, ROWS_BASE, STATS_BYTES } from './stats_layout.js'
import { Meter, NamespaceMeter, NsField, ProcessMeter } from './stats_meters.js'
import { NameTable } from './stats_names.js'
import { readStats, sumRows } from './stats_snapshot.js'
import { CIRCUIT_STATES } from './stats_types.js'
import type { CacheStats, L1Usage } from './stats_types.js'

export { HISTOGRAM_BOUNDS_MS } from './stats_histogram.js'
export type { HistogramSnapshot } from './stats_histogram.js'
export { MAX_NAMESPACES, MAX_THREAD_ROWS, OTHER_NAMESPACE, STATS_BYTES } from './stats_layout.js'
export { Field, Meter, NamespaceMeter, NsField, ProcessMeter, ProcField } from './stats_meters.js'
export { emptyNamespaceStats, emptyStats } from './stats_types.js'
export type { CacheStats, L1Usage, NamespaceStats, ProcessStats, TierStats } from './stats_types.js'

/** One thread's view of a cache's stats buffer: its own meters, and the sum over every thread. */
export class StatsBlock {
  readonly sab: SharedArrayBuffer
  private readonly head: Int32Array
  private readonly rows: Float64Array
  private readonly mine: Float64Array
  private readonly names: NameTable
  private readonly nsMeters = new Map<string, NamespaceMeter>()
  readonly l1: Meter
  readonly l2: Meter
  readonly process: ProcessMeter

  constructor(sab: SharedArrayBuffer | undefined, enabled: { l1: boolean; l2: boolean }) {
    this.sab = sab ?? new SharedArrayBuffer(STATS_BYTES)
    if (this.sab.byteLength !== STATS_BYTES) throw new RangeError(`stats buffer of ${this.sab.byteLength} bytes; this version needs ${STATS_BYTES}`)
    this.head = new Int32Array(this.sab, 0, HEADER_WORDS)
    this.names = new NameTable(this.sab)
    this.rows = new Float64Array(this.sab, ROWS_BASE)
    const row = Math.min(MAX_THREAD_ROWS - 1, Atomics.add(this.head, HeaderWord.RowsClaimed, 1))
    this.mine = this.rows.subarray(row * ROW, (row + 1) * ROW)
    this.l1 = new Meter(this.mine, L1_BASE, enabled.l1, 16)
    this.l2 = new Meter(this.mine, L2_BASE, enabled.l2, 1)
    this.process = new ProcessMeter(this.mine, PROC_BASE)
  }

  /** This thread's meter for namespace `name` (registered in the buffer on first use by any thread). */
  namespace(name: string): NamespaceMeter {
    let m = this.nsMeters.get(name)
    if (!m) {
      m = new NamespaceMeter(this.mine, nsBase(this.names.register(name)))
      this.nsMeters.set(name, m)
    }
    return m
  }

  /** Counts an L1 eviction against the namespace of `key` (the longest registered one that prefixes it). */
  evicted(key: string): void {
    this.mine[nsBase(this.names.blockOfKey(key)) + NsField.Evictions]! += 1
  }

  /** Counts an error (a corrupt entry found below the cache, e.g. by decryption) against the namespace of `key`. */
  erred(key: string): void {
    this.mine[nsBase(this.names.blockOfKey(key)) + NsField.Errors]! += 1
  }

  /** Records the breaker's state where every thread's stats() can read it. */
  setCircuit(state: CacheStats['circuit']): void {
    Atomics.store(this.head, HeaderWord.Circuit, CIRCUIT_STATES.indexOf(state))
  }

  snapshot(l1Usage: L1Usage | undefined): CacheStats {
    const names = this.names.registered()
    const sum = sumRows(this.rows, Atomics.load(this.head, HeaderWord.RowsClaimed), names.length)
    const circuit = CIRCUIT_STATES[Atomics.load(this.head, HeaderWord.Circuit)] ?? 'closed'
    return readStats({ sum, names, l1: this.l1, l2: this.l2, l1Usage, circuit })
  }
}
