import type { CacheEvent } from '../../src/observability/event_stream.js'

/** The next event, or a failure after `ms`. */
export async function nextWithin(it: AsyncIterator<CacheEvent>, ms = 5000): Promise<IteratorResult<CacheEvent>> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
