/**
 * Why a Cluster could not connect. ioredis discovers a Cluster's slots over
 * duplicated node connections whose 'error' events it discards, so a TLS
 * rejection (an untrusted certificate, a hostname mismatch, a client
 * certificate the server requires) surfaces only as "Connection is closed" /
 * "Failed to refresh slots cache". One plain connection to a seed node, with
 * the Cluster's own node options, says what went wrong.
 */
import { Redis } from 'ioredis'
import type { Cluster, RedisOptions } from 'ioredis'
import { sanitizeRedisError } from './errors.js'
import type { TlsContext } from './errors.js'

/** The TLS settings a client connects with (a Cluster: its node options). */
export function tlsContext(client: Redis | Cluster): TlsContext {
  const options = (client as Cluster).isCluster ? (client as Cluster).options.redisOptions : (client as Redis).options
  const tls = (options as RedisOptions | undefined)?.tls
  return { tls: tls !== undefined, clientCert: tls?.cert !== undefined || tls?.pfx !== undefined }
}

/**
 * Connects once to the Cluster's first seed node with its node options (TLS,
 * username, password) and answers that connection's first error, or undefined
 * when it connects (the problem is elsewhere) or the client is not one nearcache
 * can probe. Never throws; gives up after `timeoutMs`.
 */
export async function probeClusterSeed(cluster: Cluster, timeoutMs: number): Promise<Error | undefined> {
  const seeds = (cluster as unknown as { startupNodes?: unknown[] }).startupNodes
  const seed = Array.isArray(seeds) ? seeds[0] : undefined
  const { host, port } = seedAddress(seed)
  if (port === undefined) return undefined
  const probe = new Redis({
    ...cluster.options.redisOptions,
    host,
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
  })
  let first: Error | undefined
  probe.on('error', (err: unknown) => {
    first ??= sanitizeRedisError(err)
  })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      // The ready check (INFO) runs before 'ready': a server that resets a TLS connection without a client certificate fails it.
      probe.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
    return undefined
  } catch (err) {
    return first ?? sanitizeRedisError(err)
  } finally {
    clearTimeout(timer)
    probe.disconnect()
  }
}

/** host and port of a startup node as ioredis keeps it ({ host, port }, a port number or 'host:port'). */
function seedAddress(seed: unknown): { host: string; port: number | undefined } {
  if (typeof seed === 'number') return { host: '127.0.0.1', port: seed }
  if (typeof seed === 'string') {
    const m = /^(?:redis:\/\/)?(\[[^\]]+\]|[^:]*):(\d+)$/.exec(seed)
    return { host: m?.[1]?.replace(/^\[|\]$/g, '') || '127.0.0.1', port: m ? Number(m[2]) : undefined }
  }
  if (seed && typeof seed === 'object') {
    const s = seed as { host?: unknown; port?: unknown }
    const port = typeof s.port === 'number' ? s.port : typeof s.port === 'string' ? Number(s.port) : 6379
    return { host: typeof s.host === 'string' ? s.host : '127.0.0.1', port: Number.isInteger(port) ? port : undefined }
  }
  return { host: '127.0.0.1', port: undefined }
}
