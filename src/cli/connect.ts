import { Cluster, Redis } from 'ioredis'
import { createCache } from '../index.js'
import type { NearCache } from '../index.js'
import { connect as tcpConnect } from 'node:net'
import type { HostPort, Target } from './args.js'
import { CliError, oneLine } from './errors.js'

export const CONNECT_TIMEOUT_MS = 5000
const COMMAND_TIMEOUT_MS = 15_000

export type Client = Redis | Cluster

/**
 * Connects an ioredis client to the target and waits until it is ready. Fails
 * fast (no reconnect loop) with a one-line CliError naming the target.
 */
export async function connect(target: Target): Promise<Client> {
  let firstError: string | undefined
  const remember = (err: unknown, where?: string) => {
    firstError ??= where ? `${where}: ${oneLine(err)}` : oneLine(err)
  }
  let client: Client
  if (target.kind === 'standalone') {
    client = new Redis(target.url, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 2,
      enableAutoPipelining: true,
      // Reconnect a few times during a long run; the first connect below fails fast on its own.
      retryStrategy: (times) => (times > 5 ? null : Math.min(times * 200, 1000)),
    })
  } else {
    const cluster = new Cluster(target.nodes, {
      lazyConnect: true,
      enableAutoPipelining: true,
      clusterRetryStrategy: (times) => (times > 3 ? null : 200),
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      redisOptions: { connectTimeout: CONNECT_TIMEOUT_MS, commandTimeout: COMMAND_TIMEOUT_MS, maxRetriesPerRequest: 2 },
    })
    cluster.on('node error', (err: unknown, key: unknown) => remember(err, typeof key === 'string' ? key : undefined))
    client = cluster
  }
  client.on('error', (err: unknown) => remember(err))
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS + 1000)
      }),
    ])
    if (target.kind === 'standalone') {
      const info = await (client as Redis).info('cluster')
      if (/^cluster_enabled:1/m.test(info)) {
        client.disconnect()
        const { host, port } = (client as Redis).options
        throw new CliError(`${target.label} is a Redis Cluster node: connect with --cluster ${host}:${port}`)
      }
    }
  } catch (err) {
    if (err instanceof CliError) throw err
    client.disconnect()
    let why = firstError ?? oneLine(err)
    if (target.kind === 'cluster' && /Connection is closed|None of startup nodes/.test(why)) {
      // ioredis hides the seed nodes' socket errors; one TCP connect says what is wrong.
      const seed = target.nodes[0] as HostPort
      const socketError = await probeTcp(seed)
      if (socketError) why = `${seed.host}:${seed.port}: ${socketError}`
    }
    const where = target.kind === 'cluster' ? `the Redis Cluster at ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}` : `Redis at ${target.label}`
    throw new CliError(`cannot reach ${where} (${why})`, { cause: err })
  } finally {
    clearTimeout(timer)
  }
  // Later client errors surface through the commands that fail; do not print them twice.
  return client
}

/** Closes a client without waiting long for a server that may be gone. */
export async function disconnect(client: Client | undefined): Promise<void> {
  if (!client) return
  try {
    await Promise.race([client.quit(), new Promise((r) => setTimeout(r, 1000).unref())])
  } catch {
    /* already closed */
  }
  client.disconnect()
}

/**
 * A cache on the target through the library's public API, over a client this
 * command connected. It has the smallest L1 the library allows, only because the
 * library announces changes to other processes' L1s (cross-process invalidation)
 * from caches that have one: with `l1: false` an operator's invalidation would
 * reach the running servers only when their L1 copies time out. The command
 * never reads through that L1 (warm and invalidate only write and delete).
 */
export async function openCache(target: Target, namespace: string): Promise<{ cache: NearCache; client: Client }> {
  const client = await connect(target)
  try {
    const cache = await createCache({ redis: client, namespace, l1: { maxBytes: '256kb' } })
    cache.on('error', () => {
      /* corrupt entries and client errors: counted by the cache, reported by the failing call */
    })
    return { cache, client }
  } catch (err) {
    await disconnect(client)
    throw err
  }
}

export async function closeCache(opened: { cache: NearCache; client: Client } | undefined): Promise<void> {
  if (!opened) return
  try {
    await opened.cache.close()
  } finally {
    await disconnect(opened.client)
  }
}

/** The master nodes to scan: every master of a Cluster, or the one server. */
export function masters(client: Client): Redis[] {
  return (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis]
}

export function isCluster(client: Client): client is Cluster {
  return (client as Cluster).isCluster === true
}

/** host:port of a node client. */
export function nodeAddress(node: Redis): string {
  const o = node.options
  return `${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`
}

/** The error of a plain TCP connect to the node, or undefined when it connects. */
function probeTcp(node: HostPort): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: node.host, port: node.port })
    const done = (why: string | undefined) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(why)
    }
    const timer = setTimeout(() => done(`no TCP connection within ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS)
    sock.once('connect', () => done(undefined))
    sock.once('error', (err) => done(oneLine(err)))
  })
}
