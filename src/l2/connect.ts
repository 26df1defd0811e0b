import { Cluster, Redis } from 'ioredis'
import type { ClusterOptions, RedisOptions } from 'ioredis'
import { InvalidOptionError, L2UnavailableError } from '../errors.js'
import type { ClusterConnection, RedisOption } from '../options/options.js'
import { probeClusterSeed, tlsContext } from './connection_probe.js'
import { describeFailure, hint, sanitizeRedisError, saysOnlyConnectionLost } from './errors.js'

/** The latest connection error of each client nearcache created, until it is ready again. */
const lastErrors = new WeakMap<Redis | Cluster, Error>()

/**
 * The client's most recent connection error (WRONGPASS, a certificate error,
 * ECONNREFUSED, ...) since it was last ready; undefined for clients nearcache did
 * not create. ioredis reports it only on the 'error' event; a command that fails
 * afterwards says no more than "Connection is closed".
 */
export function lastConnectionError(client: Redis | Cluster): Error | undefined {
  return lastErrors.get(client)
}

export interface Connected {
  client: Redis | Cluster
  /** true when nearcache created the client and must close it. */
  owned: boolean
}

function isClient(x: object): x is Redis | Cluster {
  return x instanceof Redis || x instanceof Cluster || (typeof (x as Redis).sendCommand === 'function' && 'status' in x)
}

/**
 * Builds (or adopts) the ioredis client for the `redis` option and waits until it
 * is ready. A client nearcache creates has auto-pipelining on, a command timeout,
 * and its 'error' events forwarded to `onError` instead of printed.
 */
export async function connectRedis(
  option: Exclude<RedisOption, false>,
  timeouts: { connectTimeout: number; commandTimeout: number },
  onError: (err: Error) => void,
): Promise<Connected> {
  if (typeof option === 'object' && isClient(option)) {
    await waitReady(option, timeouts.connectTimeout, false)
    return { client: option, owned: false }
  }
  const common: RedisOptions = {
    lazyConnect: true,
    enableAutoPipelining: true,
    commandTimeout: timeouts.commandTimeout,
    connectTimeout: timeouts.connectTimeout,
    maxRetriesPerRequest: 2,
  }
  let client: Redis | Cluster
  if (typeof option === 'string') {
    client = new Redis(option, common)
  } else if ('cluster' in option) {
    const { cluster: nodes, ...clusterOptions } = option as ClusterConnection
    if (!Array.isArray(nodes) || nodes.length === 0) {
      throw new InvalidOptionError('redis.cluster must be a non-empty array of nodes, e.g. [{ host: "127.0.0.1", port: 7000 }].')
    }
    const opts: ClusterOptions = {
      lazyConnect: true,
      enableAutoPipelining: true,
      ...clusterOptions,
      redisOptions: { commandTimeout: timeouts.commandTimeout, connectTimeout: timeouts.connectTimeout, maxRetriesPerRequest: 2, ...clusterOptions.redisOptions },
    }
    client = new Cluster(nodes, opts)
  } else {
    client = new Redis({ ...common, ...(option as RedisOptions), lazyConnect: true })
  }
  const remember = (err: unknown) => {
    const e = sanitizeRedisError(err)
    lastErrors.set(client, e)
    return e
  }
  client.on('error', (err: unknown) => {
    const e = remember(err)
    onError(new L2UnavailableError(`Redis connection error: ${e.message}`, e))
  })
  // A Cluster reports its nodes' connection errors here, not on 'error'.
  if ((client as Cluster).isCluster) client.on('node error', (err: unknown) => void remember(err))
  client.on('ready', () => lastErrors.delete(client))
  await waitReady(client, timeouts.connectTimeout, true)
  return { client, owned: true }
}

async function waitReady(client: Redis | Cluster, timeoutMs: number, owned: boolean): Promise<void> {
  if (client.status === 'ready') return
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.status === 'wait' ? client.connect() : once(client, 'ready'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready after ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (err) {
    if (owned) client.disconnect()
    const e = sanitizeRedisError(err)
    let last = lastErrors.get(client)
    // A Cluster hides its nodes' TLS and socket errors: one connection to a seed node finds the cause.
    if ((client as Cluster).isCluster && (!last || saysOnlyConnectionLost(last))) last = (await probeClusterSeed(client as Cluster, timeoutMs)) ?? last
    throw new L2UnavailableError(
      `Could not connect to Redis (${describeFailure(e, last)}). ${hint(last ?? e, tlsContext(client))}Start the server, fix the redis option or NEARCACHE_REDIS_URL, or pass redis: false for an L1-only cache.`,
      last ?? e,
    )
  } finally {
    clearTimeout(timer)
  }
}

function once(client: Redis | Cluster, event: string): Promise<void> {
  return new Promise((resolve) => client.once(event, () => resolve()))
}
