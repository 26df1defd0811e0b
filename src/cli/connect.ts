import { connect as tcpConnect } from 'node:net'
import { Cluster, Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import { createCache } from '../index.js'
import type { NearCache } from '../index.js'
import type { EncryptionKeyInput } from '../security/keyring.js'
import { probeClusterSeed } from '../l2/connection_probe.js'
import { hint, sanitizeRedisError } from '../l2/errors.js'
import type { HintWords } from '../l2/errors.js'
import type { HostPort, Target } from './args.js'
import { PASSWORD_ENV } from './credentials.js'
import type { Credentials } from './credentials.js'
import { CliError, oneLine } from './errors.js'

export const CONNECT_TIMEOUT_MS = 5000
const COMMAND_TIMEOUT_MS = 15_000

export type Client = Redis | Cluster

/** The hints of src/l2/errors.ts in the CLI's words. */
const CLI_HINT_WORDS: HintWords = {
  credentials: `--user and the password (${PASSWORD_ENV} or --password-file)`,
  ca: '--tls-ca',
  cert: '--tls-cert',
  certAndKey: '--tls-cert and --tls-key',
  servername: ' (in --redis or --cluster)',
  useTls: 'add --tls (and --tls-ca)',
  plainPort: 'A plain port takes redis:// without --tls',
}

/** ioredis options for the credentials; the only place the CLI reveals its secrets. */
function authOptions(c: Credentials): RedisOptions {
  const o: RedisOptions = {}
  if (c.tls) {
    o.tls = {
      ...(c.tls.ca ? { ca: c.tls.ca } : {}),
      ...(c.tls.cert && c.tls.key ? { cert: c.tls.cert, key: c.tls.key.reveal() } : {}),
    }
  }
  if (c.username !== undefined) o.username = c.username
  if (c.password !== undefined) o.password = c.password.reveal()
  return o
}

/**
 * Connects an ioredis client to the target and waits until it is ready. Fails
 * fast (no reconnect loop) with a one-line CliError naming the target.
 */
export async function connect(target: Target): Promise<Client> {
  let firstError: { text: string; error: Error } | undefined
  const remember = (err: unknown, where?: string) => {
    const error = sanitizeRedisError(err)
    firstError ??= { text: where ? `${where}: ${oneLine(error)}` : oneLine(error), error }
  }
  const auth = authOptions(target.credentials)
  // No reconnecting before the first connection: an unreachable server fails at once.
  let ready = false
  let client: Client
  if (target.kind === 'standalone') {
    client = new Redis(target.url, {
      ...auth,
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
      redisOptions: { ...auth, connectTimeout: CONNECT_TIMEOUT_MS, commandTimeout: COMMAND_TIMEOUT_MS, maxRetriesPerRequest: 2 },
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
    let why = firstError?.text ?? oneLine(err)
    let cause = firstError?.error ?? sanitizeRedisError(err)
    if (target.kind === 'cluster' && /Connection is closed|None of startup nodes|Failed to refresh slots cache/.test(why)) {
      // ioredis hides the seed nodes' socket and TLS errors; one connection to a seed says what is wrong.
      const seed = target.nodes[0] as HostPort
      const seedError = (await probeTcp(seed)) ?? (await probeClusterSeed(client as Cluster, CONNECT_TIMEOUT_MS))
      if (seedError) {
        why = `${seed.host}:${seed.port}: ${oneLine(seedError)}`
        cause = seedError
      }
    }
    const where = target.kind === 'cluster' ? `the Redis Cluster at ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}` : `Redis at ${target.label}`
    const tls = { tls: target.credentials.tls !== undefined, clientCert: target.credentials.tls?.cert !== undefined }
    const advice = hint(cause, tls, CLI_HINT_WORDS).trim()
    throw new CliError(`cannot reach ${where} (${why})${advice ? `. ${advice}` : ''}`, { cause })
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
function probeTcp(node: HostPort): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: node.host, port: node.port })
    const done = (why: Error | undefined) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(why)
    }
    const timer = setTimeout(() => done(new Error(`no TCP connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
    sock.once('connect', () => done(undefined))
    sock.once('error', (err) => done(sanitizeRedisError(err)))
  })
}
