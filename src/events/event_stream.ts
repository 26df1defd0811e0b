import type { CacheStats } from '../stats.js'

export interface CacheEvent {
  type: 'error' | 'circuit'
  /** Date.now() when the cache emitted it. */
  at: number
  /** The Error for 'error', the new breaker state for 'circuit'. */
  detail: unknown
}

/** What eventStream needs of a cache: its on/off for 'error' and 'circuit'. */
export interface EventSource {
  on(event: 'error', listener: (err: Error) => void): unknown
  on(event: 'circuit', listener: (state: CacheStats['circuit']) => void): unknown
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: 'error' | 'circuit', listener: (arg: any) => void): unknown
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

/**
 * The cache's 'error' and 'circuit' events as an async iterator. Events that
 * arrive while nobody is reading wait in a bounded buffer: when it is full the
 * oldest is dropped and counted in `dropped`. Subscribing counts as an 'error'
 * listener, so the cache emits errors it would otherwise only count.
 * `return()` (or leaving a for-await loop) unsubscribes; events already buffered
 * are discarded.
 */
export function eventStream(cache: EventSource, options: { maxBuffer?: number } = {}): EventStream {
  const max = options.maxBuffer ?? DEFAULT_EVENT_BUFFER
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxBuffer must be a whole number >= 1 (got ${max})`)
  const buffer: CacheEvent[] = []
  const waiting: ((r: IteratorResult<CacheEvent>) => void)[] = []
  let dropped = 0
  let done = false

  const push = (type: CacheEvent['type'], detail: unknown) => {
    if (done) return
    const event: CacheEvent = { type, at: Date.now(), detail }
    const reader = waiting.shift()
    if (reader) return reader({ value: event, done: false })
    if (buffer.length >= max) {
      buffer.shift()
      dropped++
    }
    buffer.push(event)
  }
  const onError = (err: Error) => push('error', err)
  const onCircuit = (state: CacheStats['circuit']) => push('circuit', state)
  cache.on('error', onError)
  cache.on('circuit', onCircuit)

  const finish = (): IteratorResult<CacheEvent> => {
    if (!done) {
      done = true
      cache.off('error', onError)
      cache.off('circuit', onCircuit)
      buffer.length = 0
      for (const w of waiting.splice(0)) w({ value: undefined, done: true })
    }
    return { value: undefined, done: true }
  }

  const stream: EventStream = {
    get dropped() {
      return dropped
    },
    get buffered() {
      return buffer.length
    },
    next(): Promise<IteratorResult<CacheEvent>> {
      const event = buffer.shift()
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
