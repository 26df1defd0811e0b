export { createCache } from './create.js'
export { attachCache, workerCache } from './attach.js'
export type { CacheHandle } from './handle.js'
export { NearCache } from './cache.js'
export type { SetOptions, SetManyEntry, GetOrSetOptions } from './cache.js'
export type { CacheOptions, L1Options, RedisOption, ClusterConnection, Clock, Duration, ByteSize } from './options.js'
export type { CacheStats, TierStats } from './stats.js'
export {
  CacheError,
  InvalidKeyError,
  InvalidValueError,
  ValueTooLargeError,
  InvalidOptionError,
  L2UnavailableError,
  L2CommandError,
  CorruptEntryError,
  ConflictError,
  CacheClosedError,
} from './errors.js'
export type { CacheErrorCode } from './errors.js'
