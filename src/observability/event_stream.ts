import type { InvalidationNotice } from '../l2/invalidation_bus.js'
import type { CacheStats } from './stats.js'

export type { InvalidationNotice } from '../l2/invalidation_bus.js'

/** The events a cache emits. */
export type CacheEventType = 'error' | 'circuit' | 'eviction' | 'invalidation'

/** Every event type, in a stable order (the default of eventStream's `types`). */
export const CACHE_EVENT_TYPES: readonly CacheEventType[] = Object.freeze(['error', 'circuit', 'eviction', 'invalidation'] as const)

/** Detail of an 'eviction' event: the evicted L1 entry's full internal key (`<namespace>:<key>`). */
export interface EvictionDetail {
  key: string
}

export interface CacheEvent {
  type: CacheEventType
  /** Date.now() when the cache emitted it. */
  at: number
  /**
   * 'error': the Error. 'circuit': the new breaker state ('closed', 'open',
   * 'half-open'). 'eviction': an EvictionDetail. 'invalidation': an
   * InvalidationNotice (sent, received or a full L1 flush).
   */
  detail: unknown
}

/** What eventStream needs of a cache: its on/off for the four event names. */
export interface EventSource {
  on(event: 'error', listener: (err: Error) => void): unknown
  on(event: 'circuit', listener: (state: CacheStats['circuit']) => void): unknown
  on(event: 'eviction', listener: (detail: EvictionDetail) => void): unknown
  on(event: 'invalidation', listener: (notice: InvalidationNotice) => void): unknown
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: CacheEventType, listener: (arg: any) => void): unknown
}

export interface EventStreamOptions {
  /** Events kept while nobody reads (default 1000); the oldest are dropped first. */
  maxBuffer?: number
  /** The event types to subscribe to (default: all four). */
  types?: readonly CacheEventType[]
}

export interface EventStream extends AsyncIterableIterator<CacheEvent> {
  /** Events dropped because the buffer was full (the oldest go first). */
  readonly dropped: number
  /** Events waiting to be read. */
  readonly buffered: number
  /** Unsubscribes and ends the iteration. */
  return(): Promise<IteratorResult<CacheEvent>>
}

export const DEFAULT_EVENT_BUFFER = 1000

/** The `types` option checked: known names, at least one, no repeats. Throws RangeError. */
export function validateEventTypes(types: unknown): CacheEventType[] {
  if (!Array.isArray(types)) throw new RangeError(`types must be an array of event types (${CACHE_EVENT_TYPES.join(', ')})`)
  const out: CacheEventType[] = []
  for (const t of types as unknown[]) {
    if (typeof t !== 'string' || !(CACHE_EVENT_TYPES as readonly string[]).includes(t)) {
      throw new RangeError(`unknown event type ${JSON.stringify(t)} (known: ${CACHE_EVENT_TYPES.join(', ')})`)
    }
    if (!out.includes(t as CacheEventType)) out.push(t as CacheEventType)
  }
  if (out.length === 0) throw new RangeError(`types must name at least one event type (${CACHE_EVENT_TYPES.join(', ')})`)
  return out
}

/**
 * The cache's events as an async iterator: 'error', 'circuit', 'eviction' and
 * 'invalidation', or the ones named in `types`. Events that arrive while nobody is
 * reading wait in a bounded buffer: when it is full the oldest is dropped and
 * counted in `dropped` (evictions can come by the thousand). Subscribing to
 * 'error' counts as an 'error' listener, so the cache emits errors it would
 * otherwise only count. `return()` (or leaving a for-await loop) unsubscribes;
 * events already buffered are discarded.
 */
export function eventStream(cache: EventSource, options: EventStreamOptions = {}): EventStream {
  const max = options.maxBuffer ?? DEFAULT_EVENT_BUFFER
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxBuffer must be a whole number >= 1 (got ${max})`)
  const types = options.types === undefined ? [...CACHE_EVENT_TYPES] : validateEventTypes(options.types)
  // A ring of `max` slots: dropping the oldest is O(1), however busy evictions get.
  const ring: (CacheEvent | undefined)[] = []
  let head = 0
  let size = 0
  const waiting: ((r: IteratorResult<CacheEvent>) => void)[] = []
  let dropped = 0
  let done = false

  const take = (): CacheEvent | undefined => {
    if (size === 0) return undefined
    const event = ring[head]
    ring[head] = undefined
    head = (head + 1) % max
    size--
    return event
  }
  const push = (type: CacheEventType, detail: unknown) => {
    if (done) return
    const event: CacheEvent = { type, at: Date.now(), detail }
    const reader = waiting.shift()
    if (reader) return reader({ value: event, done: false })
    if (size === max) {
      take()
      dropped++
    }
    ring[(head + size) % max] = event
    size++
  }
  const listeners = types.map((type) => [type, (detail: unknown) => push(type, detail)] as const)
  for (const [type, listener] of listeners) (cache.on as (event: CacheEventType, l: (arg: unknown) => void) => unknown).call(cache, type, listener)

  const finish = (): IteratorResult<CacheEvent> => {
    if (!done) {
      done = true
      for (const [type, listener] of listeners) cache.off(type, listener)
      ring.length = 0
      head = size = 0
      for (const w of waiting.splice(0)) w({ value: undefined, done: true })
    }
    return { value: undefined, done: true }
  }

  const stream: EventStream = {
    get dropped() {
      return dropped
    },
    get buffered() {
      return size
    },
    next(): Promise<IteratorResult<CacheEvent>> {
      const event = take()
      if (event) return Promise.resolve({ value: event, done: false })
      if (done) return Promise.resolve({ value: undefined, done: true })
      return new Promise((resolve) => waiting.push(resolve))
    },
    return(): Promise<IteratorResult<CacheEvent>> {
      return Promise.resolve(finish())
    },
    throw(err?: unknown): Promise<IteratorResult<CacheEvent>> {
      finish()
      return Promise.reject(err)
    },
    [Symbol.asyncIterator]() {
      return stream
    },
  }
  return stream
}

/** The JSON-safe form of each event type (what eventToJSON answers and `/events` serves, one per line). */
export type CacheEventJSON =
  | { type: 'error'; at: number; code?: string; message: string }
  | { type: 'circuit'; at: number; state: string }
  | { type: 'eviction'; at: number; key: string }
  | {
      type: 'invalidation'
      at: number
      direction: InvalidationNotice['direction']
      keys: string[]
      prefixes: string[]
      publisher?: string
      reason?: 'disconnect' | 'gap'
    }

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])

/**
 * An event as plain JSON-safe data: an Error becomes its `code` (when it has a
 * string one) and `message`; the other details are copied field by field, so
 * whatever a source put in them, JSON.stringify of the answer is safe.
 */
export function eventToJSON(e: CacheEvent): CacheEventJSON {
  const { type, at } = e
  const d = e.detail
  switch (type) {
    case 'error': {
      const code = (d as { code?: unknown } | null)?.code
      const message = d instanceof Error ? d.message : typeof (d as { message?: unknown } | null)?.message === 'string' ? (d as { message: string }).message : String(d)
      return typeof code === 'string' ? { type, at, code, message } : { type, at, message }
    }
    case 'circuit':
      return { type, at, state: String(d) }
    case 'eviction':
      return { type, at, key: String((d as Partial<EvictionDetail> | null)?.key) }
    case 'invalidation': {
      const n = (d ?? {}) as Partial<Record<'direction' | 'publisher' | 'reason', unknown>> & { keys?: unknown; prefixes?: unknown }
      const direction = (n.direction === 'sent' || n.direction === 'received' || n.direction === 'flush' ? n.direction : String(n.direction)) as InvalidationNotice['direction']
      const out: CacheEventJSON = { type, at, direction, keys: strings(n.keys), prefixes: strings(n.prefixes) }
      if (typeof n.publisher === 'string') out.publisher = n.publisher
      if (n.reason === 'disconnect' || n.reason === 'gap') out.reason = n.reason
      return out
    }
    default:
      // An event type this version does not know: keep what is JSON-safe about it.
      return { type, at } as unknown as CacheEventJSON
  }
}
