import type { ResolvedOptions } from '../options/options.js'

/**
 * What a worker thread needs to attach to a cache: plain data and
 * SharedArrayBuffers only, so it passes through `postMessage`, `workerData` or a
 * piscina task as is (structured clone; nothing to transfer).
 */
export interface CacheHandle {
  readonly nearcache: 1
  /** The namespace of the cache the handle was taken from. */
  readonly namespace: string
  /** The shared L1 table, or null when the cache has no L1. */
  readonly table: SharedArrayBuffer | null
  readonly stats: SharedArrayBuffer
  /** The BroadcastChannel of the owner's L2 server, or null when there is no L2. */
  readonly channel: string | null
  readonly options: HandleOptions
}

/**
 * The owner's resolved options, less what cannot cross threads (clients, clocks)
 * or must not (encryption keys: an attached thread reads and writes plain
 * envelopes through the owner's L2 stack, which seals them).
 */
export type HandleOptions = Omit<ResolvedOptions, 'redis' | 'clock' | 'writer'>

export function handleOptions(o: ResolvedOptions): HandleOptions {
  const { redis: _redis, clock: _clock, writer: _writer, ...rest } = o
  return { ...rest, encryption: false }
}
