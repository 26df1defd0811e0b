import { connect as tcpConnect } from 'node:net'
import { Cluster, Redis } from 'ioredis'
import { createCache } from '../index.js'
import type { NearCache } from '../index.js'
import type { EncryptionKeyInput } from '../security/keyring.js'
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
  // No reconnecting before the first connection: an unreachable server fails at once.
  let ready = false
  let client: Client
  if (target.kind === 'standalone') {
    client = new Redis(target.url, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 2,
      // Not auto-pipelined: an auto-pipelined command (the library's invalidation
      // announcement) issued just before QUIT is lost.
      enableAutoPipelining: false,
      // Reconnect a few times during a long run.
      retryStrategy: (times) => (!ready || times > 5 ? null : Math.min(times * 200, 1000)),
    })
  } else {
    const cluster = new Cluster(target.nodes, {
      lazyConnect: true,
      enableAutoPipelining: false,
      clusterRetryStrategy: (times) => (!ready || times > 3 ? null : 200),
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
        stop(client)
        const { host, port } = (client as Redis).options
        throw new CliError(`${target.label} is a Redis Cluster node: connect with --cluster ${host}:${port}`)
      }
    }
    ready = true
  } catch (err) {
    if (err instanceof CliError) throw err
    stop(client)
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
  stop(client)
}

/**
 * Drops the connection unless it is already gone (ioredis arms a 2 s timer on
 * every disconnect(), which would hold a finished command open that long).
 */
function stop(client: Client): void {
  if (client.status !== 'end') client.disconnect()
}

/**
 * A cache on the target through the library's public API (no L1: the command only
 * writes and deletes), over a client this command connected. The library announces
 * its changes to running processes, so they drop their L1 copies at once. With
 * `encryption` (the CLI's keys: cli/keys.ts) its writes are sealed and its
 * announcements signed.
 */
export async function openCache(target: Target, namespace: string, encryption?: { keys: EncryptionKeyInput[] }): Promise<{ cache: NearCache; client: Client }> {
  const client = await connect(target)
  try {
    const cache = await createCache({ redis: client, namespace, l1: false, ...(encryption ? { encryption } : {}) })
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
