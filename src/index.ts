export { createCache } from './create.js'
export { attachCache, workerCache } from './attach.js'
export type { CacheHandle } from './handle.js'
export { NearCache } from './cache.js'
export type { SetOptions, SetManyEntry, GetOrSetOptions } from './cache.js'
export type { CacheOptions, L1Options, RedisOption, ClusterConnection, Clock, Duration, ByteSize } from './options.js'
export type { CacheStats, TierStats, NamespaceStats, ProcessStats, HistogramSnapshot } from './stats.js'
export { histogramQuantile } from './stats_histogram.js'
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
  CodecError,
  QueueFullError,
  BadMessageError,
} from './errors.js'
export type { CacheErrorCode } from './errors.js'
export { DeadLetterError } from './write/dead_letter.js'
export { WalCorruptionError } from './write/wal.js'
export { renderPrometheus, registerPromClient, metricFamilies, escapeLabelValue, CIRCUIT_STATE_VALUE } from './metrics/prometheus.js'
export { parsePrometheus, statsFromSamples } from './metrics/parse.js'
export type { StatsSource, PromClientRegistration, MetricFamily } from './metrics/prometheus.js'
export { serveMetrics, PROMETHEUS_CONTENT_TYPE, EVENTS_CONTENT_TYPE } from './metrics/http_endpoint.js'
export { healthReport } from './health/health.js'
export type { HealthReport, HealthStatus, HealthInput } from './health/health.js'
export type { ServeMetricsOptions, MetricsServer } from './metrics/http_endpoint.js'
export type { MetricsSource, EventsOptions, EventsIterable } from './metrics/http_endpoint.js'
export { traced, channels, channelName, OPERATIONS as TRACED_OPERATIONS } from './metrics/tracing.js'
export type { TracedOperation, TraceMessage } from './metrics/tracing.js'
export { eventStream, eventToJSON, CACHE_EVENT_TYPES } from './events/event_stream.js'
export type { CacheEvent, CacheEventType, CacheEventJSON, EventStream, EventStreamOptions, EvictionDetail, InvalidationNotice } from './events/event_stream.js'
