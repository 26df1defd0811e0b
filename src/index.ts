export { createCache } from './create.js'
export { attachCache, workerCache } from './threads/attach.js'
export type { CacheHandle } from './threads/handle.js'
export { NearCache } from './cache/facade.js'
export type { SetOptions, SetManyEntry, GetOrSetOptions } from './cache/facade.js'
export type { CacheOptions, L1Options, RedisOption, ClusterConnection, Clock, Duration, ByteSize } from './options/options.js'
export type { CacheStats, TierStats, NamespaceStats, ProcessStats, HistogramSnapshot } from './observability/stats.js'
export { histogramQuantile } from './observability/stats_histogram.js'
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
  WalCorruptionError,
  DeadLetterError,
  ForbiddenError,
  RateLimitedError,
  AuditDroppedError,
} from './errors.js'
export type { AccessView } from './access/view.js'
export type { EncryptionKeyInput } from './security/keyring.js'
export type { AccessInput, PrincipalInput, Permission, RateLimitInput } from './access/principals.js'
export type { AuditInput } from './access/audit_options.js'
export type { AuditRecord } from './access/audit_record.js'
export type { AuditSinkFunction } from './access/audit.js'
export type { CacheErrorCode } from './errors.js'
export { renderPrometheus, registerPromClient, metricFamilies, escapeLabelValue, CIRCUIT_STATE_VALUE } from './observability/prometheus.js'
export { parsePrometheus, statsFromSamples } from './observability/prometheus_parse.js'
export type { StatsSource, PromClientRegistration, MetricFamily } from './observability/prometheus.js'
export { serveMetrics, PROMETHEUS_CONTENT_TYPE, EVENTS_CONTENT_TYPE } from './observability/http_endpoint.js'
export { healthReport } from './observability/health.js'
export type { HealthReport, HealthStatus, HealthInput } from './observability/health.js'
export type { ServeMetricsOptions, MetricsServer } from './observability/http_endpoint.js'
export type { MetricsSource, EventsOptions, EventsIterable } from './observability/http_endpoint.js'
export { traced, channels, channelName, OPERATIONS as TRACED_OPERATIONS } from './observability/tracing.js'
export type { TracedOperation, TraceMessage } from './observability/tracing.js'
export { eventStream, eventToJSON, CACHE_EVENT_TYPES } from './observability/event_stream.js'
export type { CacheEvent, CacheEventType, CacheEventJSON, EventStream, EventStreamOptions, EvictionDetail, InvalidationNotice } from './observability/event_stream.js'
