import type { EventEmitter } from 'node:events'
import type { CacheError } from '../errors.js'

/**
 * The cache's error reporting while `createCache` runs and after.
 *   - `onError` (the option) sees every error the cache reports: while createCache
 *     runs it is called directly; from then on it is an 'error' listener of the cache.
 *   - Errors found before createCache resolves (nobody can listen yet: damage in the
 *     write-behind log, dead letters of its replay) are held and emitted as 'error'
 *     events on the turn after it resolves, to the listeners attached by then. With
 *     no listener and no `onError` they go to `process.emitWarning`: never lost.
 * (Used by createCache; it lives with write-behind because the log is what reports
 * errors that early.)
 */
export class ErrorRelay {
  #early: Error[] | undefined = []
  readonly #onError: ((err: Error) => void) | undefined

  constructor(
    private readonly emitter: EventEmitter,
    onError: ((err: CacheError) => void) | undefined,
  ) {
    this.#onError =
      onError &&
      ((err: Error) => {
        try {
          onError(err as CacheError)
        } catch {
          // A throwing onError must not break the code that reported the error.
        }
      })
  }

  /** Reports one error (pass it as the `emitError` of the parts of the cache). */
  readonly report = (err: Error): void => {
    if (this.#early) {
      this.#onError?.(err)
      this.#early.push(err)
    } else if (this.emitter.listenerCount('error') > 0) {
      this.emitter.emit('error', err)
    }
  }

  /** createCache is about to resolve: onError becomes a listener; what was held is emitted on the next turn. */
  live(): void {
    const held = this.#early ?? []
    this.#early = undefined
    const onError = this.#onError
    if (onError) this.emitter.on('error', onError)
    if (held.length === 0) return
    setImmediate(() => {
      for (const err of held) {
        // onError already had these.
        const others = this.emitter.listeners('error').filter((l) => l !== onError) as ((err: Error) => void)[]
        for (const l of others) l.call(this.emitter, err)
        if (others.length === 0 && !onError) process.emitWarning(err)
      }
    })
  }
}
