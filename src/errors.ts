/**
 * Every error nearcache throws on purpose is a {@link CacheError} with a stable
 * `code`. Match on `code` (or `instanceof` a subclass), never on the message.
 */
export type CacheErrorCode =
  | 'E_INVALID_KEY'
  | 'E_INVALID_VALUE'
  | 'E_VALUE_TOO_LARGE'
  | 'E_INVALID_OPTION'
  | 'E_L2_UNAVAILABLE'
  | 'E_L2_ERROR'
  | 'E_CORRUPT_ENTRY'
  | 'E_CONFLICT'
  | 'E_CLOSED'
  | 'E_CODEC'
  | 'E_QUEUE_FULL'
  | 'E_BAD_MESSAGE'
  | 'E_WAL_CORRUPT'
  | 'E_FORBIDDEN'
  | 'E_RATE_LIMITED'
  | 'E_AUDIT_DROPPED'

export class CacheError extends Error {
  readonly code: CacheErrorCode
  constructor(code: CacheErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** The key is not a non-empty string, or is longer than `maxKeyBytes`. */
export class InvalidKeyError extends CacheError {
  static readonly code = 'E_INVALID_KEY'
  constructor(message: string) {
    super('E_INVALID_KEY', message)
  }
}

/** The value cannot be stored: `undefined`, a function, a symbol, or something the codec cannot encode. */
export class InvalidValueError extends CacheError {
  static readonly code = 'E_INVALID_VALUE'
  constructor(message: string, cause?: unknown) {
    super('E_INVALID_VALUE', message, { cause })
  }
}

/** The encoded value is larger than `maxValueBytes`. */
export class ValueTooLargeError extends CacheError {
  static readonly code = 'E_VALUE_TOO_LARGE'
  constructor(message: string) {
    super('E_VALUE_TOO_LARGE', message)
  }
}

/** An option passed to `createCache` or to an operation is wrong. */
export class InvalidOptionError extends CacheError {
  static readonly code = 'E_INVALID_OPTION'
  constructor(message: string) {
    super('E_INVALID_OPTION', message)
  }
}

/** Redis could not be reached (connection refused, closed, timed out, Cluster down). */
export class L2UnavailableError extends CacheError {
  static readonly code = 'E_L2_UNAVAILABLE'
  constructor(message: string, cause?: unknown) {
    super('E_L2_UNAVAILABLE', message, { cause })
  }
}

/** Redis answered with an error nearcache did not expect (a reply error, not a connection problem). */
export class L2CommandError extends CacheError {
  static readonly code = 'E_L2_ERROR'
  constructor(message: string, cause?: unknown) {
    super('E_L2_ERROR', message, { cause })
  }
}

/**
 * An entry found in a tier is not a valid nearcache envelope (foreign value, truncated,
 * checksum mismatch). Never thrown from reads: the read answers "missing" and the
 * cache emits this on its `'error'` event.
 */
export class CorruptEntryError extends CacheError {
  static readonly code = 'E_CORRUPT_ENTRY'
  readonly key: string
  constructor(key: string, message: string, cause?: unknown) {
    super('E_CORRUPT_ENTRY', message, { cause })
    this.key = key
  }
}

/** A conditional write (`nx`, `xx`, `compareAndSet`) lost too many races in a row. */
export class ConflictError extends CacheError {
  static readonly code = 'E_CONFLICT'
  constructor(message: string) {
    super('E_CONFLICT', message)
  }
}

/** The cache (or the cache it is a namespace of) was closed. */
export class CacheClosedError extends CacheError {
  static readonly code = 'E_CLOSED'
  constructor() {
    super('E_CLOSED', 'This cache has been closed; create a new one with createCache().')
  }
}

/**
 * A codec worker thread died (crashed, exited or was terminated) while it carried
 * this operation, or the codec pool was closed before the operation finished. Only
 * the operations that thread carried fail; the pool replaces the thread and the
 * next calls work. Bad values still fail with `E_INVALID_VALUE` / `E_VALUE_TOO_LARGE`.
 */
export class CodecError extends CacheError {
  static readonly code = 'E_CODEC'
  constructor(message: string, cause?: unknown) {
    super('E_CODEC', message, { cause })
  }
}

/**
 * The write-behind queue already holds `maxQueue` writes that are not yet flushed
 * to Redis. Nothing of the rejected call was written (not even to the write-ahead
 * log): retry later, slow down, or raise `maxQueue`.
 */
export class QueueFullError extends CacheError {
  static readonly code = 'E_QUEUE_FULL'
  constructor(message: string) {
    super('E_QUEUE_FULL', message)
  }
}

/**
 * A message from outside the process failed validation. For an invalidation
 * announcement on the Redis pub/sub bus: it was dropped, counted in
 * `stats().process.invalidationsRejected`, and reported on the `'error'` event
 * at most once per second. For metrics text (`parsePrometheus`, `nearcache
 * stats --from`): the text is refused, naming the bad line.
 */
export class BadMessageError extends CacheError {
  static readonly code = 'E_BAD_MESSAGE'
  constructor(message: string) {
    super('E_BAD_MESSAGE', message)
  }
}

/**
 * Damage in the write-ahead log found on replay: records in it were not replayed.
 * Not thrown; reported through the log's `onCorruption` (and by a cache on its
 * `'error'` event and to write-behind's `onError`). Code E_WAL_CORRUPT.
 */
export class WalCorruptionError extends CacheError {
  static readonly code = 'E_WAL_CORRUPT'
  constructor(
    message: string,
    /** The damaged segment (or the log directory, for records missing between segments). */
    readonly file: string,
    /** Byte offset of the first bad record in `file`; undefined for missing records. */
    readonly offset: number | undefined,
    /** Bytes of `file` from `offset` on that were not replayed. */
    readonly bytesSkipped: number,
    /** Sequence numbers known to be lost, when they can be told. */
    readonly lostSeqs: { from: number; to: number } | undefined,
    /** Where the damaged segment was moved to (kept for an operator). */
    readonly quarantinedAs: string | undefined,
  ) {
    super('E_WAL_CORRUPT', message)
  }
}

/**
 * Writes write-behind gave up on, reported on the cache's `'error'` event: code
 * E_L2_ERROR (Redis refused them for good), or E_CORRUPT_ENTRY (records of another
 * namespace found in the write-ahead log on replay). See src/wal/dead_letter.ts.
 */
export class DeadLetterError extends CacheError {
  constructor(
    code: CacheErrorCode,
    message: string,
    /** The keys given up on (full Redis keys). */
    readonly keys: string[],
    /** The dead-letter file. */
    readonly file: string,
    /** How many of them were written to it; the rest were dropped (the file was full or could not be written). */
    readonly kept: number,
    cause?: unknown,
  ) {
    super(code, message, { cause })
  }
}

/**
 * A principal's view (`cache.as(name)`) refused a call: the principal may not
 * perform that operation, or not on that key. Nothing was read or written.
 */
export class ForbiddenError extends CacheError {
  static readonly code = 'E_FORBIDDEN'
  constructor(
    message: string,
    /** The principal the view acts for. */
    readonly principal: string,
    /** The operation refused ('get', 'setMany', 'clear', ...). */
    readonly operation: string,
    /** The key refused (the first one of a batch), relative to the namespace; undefined for calls without keys. */
    readonly key?: string,
  ) {
    super('E_FORBIDDEN', message)
  }
}

/**
 * A principal used up its rate limit (`rateLimit: { rate, burst }`). Nothing was
 * read or written. Retrying after `retryAfterMs` succeeds if nothing else spent
 * the tokens meanwhile; `Infinity` when the call costs more than the bucket
 * holds (a batch larger than `burst`: split it).
 */
export class RateLimitedError extends CacheError {
  static readonly code = 'E_RATE_LIMITED'
  constructor(
    message: string,
    readonly principal: string,
    readonly retryAfterMs: number,
  ) {
    super('E_RATE_LIMITED', message)
  }
}

/**
 * The audit sink fell behind (more than `audit.maxQueue` records waiting) or
 * failed: records were dropped. Reported on the `'error'` event at most once per
 * second; the total is `stats().process.auditDropped`.
 */
export class AuditDroppedError extends CacheError {
  static readonly code = 'E_AUDIT_DROPPED'
  constructor(message: string, cause?: unknown) {
    super('E_AUDIT_DROPPED', message, { cause })
  }
}
