import type { ResolvedOptions } from '../options/options.js'
import type { AccessHandle } from '../access/setup.js'
import type { ReadRoute } from './read_route.js'

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
  /** How the attached thread reads L2: with its own connections, or through the owner (src/threads/read_route.ts). */
  readonly reads: ReadRoute
  readonly options: HandleOptions
  /** Rate buckets and the owner's audit log (access control, src/access/). */
  readonly access: AccessHandle
}

/**
 * The owner's resolved options, less what cannot cross threads (clients, clocks,
 * the audit sink: the owner writes the audit log) or must not (encryption keys: an
 * attached thread reads and writes plain envelopes through the owner's L2 stack,
 * which seals them).
 */
export type HandleOptions = Omit<ResolvedOptions, 'redis' | 'clock' | 'writer' | 'audit'>

export function handleOptions(o: ResolvedOptions): HandleOptions {
  const { redis: _redis, clock: _clock, writer: _writer, audit: _audit, ...rest } = o
  return { ...rest, encryption: false }
}
