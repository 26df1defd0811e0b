import type { Cluster } from 'ioredis'
import { initHash } from '../wasm/hash.js'
import { assemble, newEmitter, StatsBlock } from './cache/assemble.js'
import type { NearCache } from './cache/facade.js'
import { CodecPool } from './codec/codec_pool.js'
import { SharedTable } from './l1/shared_table.js'
import { connectRedis } from './l2/connect.js'
import { CircuitBreaker } from './l2/circuit_breaker.js'
import { wrapRedisError } from './l2/errors.js'
import { InvalidationBus } from './l2/invalidation_bus.js'
import { RedisTier } from './l2/redis_tier.js'
import { Field, ProcField } from './observability/stats.js'
import { BadMessageError } from './errors.js'
import type { CorruptEntryError } from './errors.js'
import type { Tier } from './tiers/tier.js'
import { ErrorRelay } from './observability/error_relay.js'
import { composeL2 } from './tiers/compose.js'
import type { EncryptionLayer } from './tiers/compose.js'
import { EntryCipher } from './security/entry_cipher.js'
import type { WriteBehindTierOptions } from './tiers/write_behind.js'
import { resolveOptions } from './options/options.js'
import { readRoute } from './threads/read_route.js'
import type { ReadRoute } from './threads/read_route.js'
import { checkAuditSink } from './access/setup.js'
import { Throttle } from './util/throttle.js'
import type { CacheOptions } from './options/options.js'

/**
 * Creates a cache. With a `redis` option (or NEARCACHE_REDIS_URL) it connects
 * first and rejects with E_L2_UNAVAILABLE when Redis cannot be reached; with
 * `redis: false` it is an in-process cache on the shared L1 alone.
 */
export async function createCache(options?: CacheOptions): Promise<NearCache> {
  const opts = resolveOptions(options)
  await checkAuditSink(opts)
  await initHash()
  const { emitter } = newEmitter()
  // Errors go to opts.onError from the start; those found before this resolves are emitted after it.
  const relay = new ErrorRelay(emitter, opts.onError)
  const emitError = relay.report
  const stats = new StatsBlock(undefined, { l1: opts.l1 !== false, l2: opts.redis !== false })
  const table = opts.l1 === false ? undefined : SharedTable.create(opts.l1.maxBytes)
  let l2: Tier | undefined
  let clusterState: (() => Promise<string | undefined>) | undefined
  let reads: ReadRoute | undefined
  if (opts.redis !== false) {
    const { client, owned } = await connectRedis(opts.redis, opts, emitError)
    reads = readRoute(opts, !owned)
    if ((client as Cluster).isCluster) clusterState = () => readClusterState(client as Cluster)
    const breaker = opts.circuitBreaker ? new CircuitBreaker(opts.circuitBreaker.threshold, opts.circuitBreaker.resetTimeout) : undefined
    if (breaker) {
      breaker.onChange = (state) => {
        stats.setCircuit(state)
        if (emitter.listenerCount('circuit') > 0) emitter.emit('circuit', state)
      }
    }
    const redis = new RedisTier(client, owned, opts.batchGets, stats.l2, opts.maxInFlight, breaker, opts.commandTimeout, opts.clusterReadScript)
    let bus: InvalidationBus | undefined
    if (opts.invalidation) {
      try {
        bus = await InvalidationBus.start(client, opts.namespace, table, { legacyChannel: opts.invalidation.legacyChannel, onError: emitError, keyring: opts.encryption && opts.encryption.keyring })
      } catch (err) {
        await redis.close()
        throw wrapRedisError(err, 'subscribing to invalidations')
      }
      bus.onRejected = rejectedReporter(stats, emitError)
      bus.onAnnounce = (notice) => {
        if (notice.direction === 'sent') stats.process.add(ProcField.InvalidationsSent)
        else if (notice.direction === 'received') stats.process.add(ProcField.InvalidationsReceived)
        else stats.process.add(ProcField.L1Flushes)
        if (emitter.listenerCount('invalidation') > 0) emitter.emit('invalidation', notice)
      }
    }
    let writeBehind: WriteBehindTierOptions | undefined
    if (opts.writeBehind) {
      const { dir, fsync, batchSize, flushIntervalMs, maxQueue, maxAttempts, maxDeadLetterBytes } = opts.writeBehind
      const onDepth = (depth: number) => stats.process.set(ProcField.WriteBehindDepth, depth)
      const onCorruption = () => stats.process.add(ProcField.WalCorruptions)
      const onDeadLetters = (writes: unknown[], fileBytes: number) => {
        stats.process.add(ProcField.DeadLetters, writes.length)
        stats.process.set(ProcField.DeadLetterBytes, fileBytes)
      }
      writeBehind = { dir, fsync, batchSize, flushIntervalMs, maxQueue, maxAttempts, maxDeadLetterBytes, namespace: opts.namespace, onError: emitError, onDepth, onCorruption, onDeadLetters }
    }
    // Encryption seals what leaves the process; with `redis: false` nothing does, and the option is accepted and unused.
    let encryption: EncryptionLayer | undefined
    if (opts.encryption) {
      const onCorrupt = (err: CorruptEntryError) => {
        stats.l2.add(Field.Errors)
        stats.erred(err.key)
        emitError(err)
      }
      encryption = { cipher: new EntryCipher(opts.encryption.keyring, opts.encryption.acceptPlaintext), onCorrupt }
    }
    l2 = await composeL2(redis, { bus, writeBehind, encryption })
  }
  const pool = opts.codecWorkers ? await CodecPool.create(opts.codecWorkers) : undefined
  const cache = assemble({ opts, table, stats, l2, serveL2: true, emitter, namespace: opts.namespace, pool, clusterState, emitError, reads })
  relay.live()
  return cache
}

/**
 * Counts every invalidation message dropped by validation, and reports them as an
 * E_BAD_MESSAGE 'error' at most once per second (with how many since the last report).
 */
function rejectedReporter(stats: StatsBlock, emitError: (err: Error) => void): (why: string, channel: string) => void {
  const throttle = new Throttle()
  let unreported = 0
  return (why, channel) => {
    stats.process.add(ProcField.InvalidationsRejected)
    unreported++
    if (!throttle.due()) return
    const n = unreported
    unreported = 0
    emitError(new BadMessageError(`Dropped ${n} invalidation message${n === 1 ? '' : 's'} on '${channel}' that failed validation (last: ${why}). Another program is publishing on nearcache's channel; see stats().process.invalidationsRejected.`))
  }
}

/** CLUSTER INFO's cluster_state as every master sees it: 'ok' only when all say so. */
async function readClusterState(cluster: Cluster): Promise<string | undefined> {
  const masters = cluster.nodes('master')
  if (masters.length === 0) return 'fail'
  const states = await Promise.all(
    masters.map((node) =>
      (node.cluster('INFO') as Promise<string>).then(
        (info) => /cluster_state:(\w+)/.exec(info)?.[1] ?? 'unknown',
        () => 'unreachable',
      ),
    ),
  )
  return states.find((s) => s !== 'ok') ?? 'ok'
}
