import type { Cluster, Redis } from 'ioredis'
import { CircuitBreaker } from '../l2/circuit_breaker.js'
import { connectRedis } from '../l2/connect.js'
import { RedisTier } from '../l2/redis_tier.js'
import type { Meter } from '../observability/stats.js'
import type { HandleOptions } from './handle.js'
import { revive } from './protocol.js'
import type { PlainRedisOption } from './read_route.js'

/** Least wait before an attached thread tries its own connection again after it could not connect. */
const MIN_RETRY_MS = 1000

/**
 * An attached thread's own Redis connection(s) for reads: a RedisTier built from
 * the owner's `redis` option, as createCache builds the owner's (same timeouts,
 * batching, gate and breaker settings; the breaker is this thread's own).
 *
 * Until it is ready, and for a while after a failed connect, `current()` answers
 * undefined and the caller reads through the owner instead; a later `current()`
 * tries again. The sockets are unref'd so an idle thread can exit; `track` holds
 * the thread alive while reads are in flight (as RemoteTier does with its channel).
 */
export class OwnConnection {
  private tier: RedisTier | undefined
  private connecting: Promise<void> | undefined
  private retryAt = 0
  private closed = false
  private pending = 0
  /** A timer that never fires: ref'd while reads are in flight, so the thread waits for their answers. */
  private readonly keepAlive: NodeJS.Timeout

  constructor(
    private readonly redis: PlainRedisOption,
    private readonly opts: HandleOptions,
    private readonly meter: Meter,
    private readonly emitError: (err: Error) => void,
  ) {
    this.keepAlive = setInterval(() => {}, 1 << 30)
    this.keepAlive.unref()
  }

  /** Starts connecting now; resolves once that attempt succeeded or failed (it never rejects). */
  start(): Promise<void> {
    this.current()
    return this.connecting ?? Promise.resolve()
  }

  /** The tier to read with, or undefined: read through the owner (not connected yet, or connecting failed recently). */
  current(): RedisTier | undefined {
    if (this.tier) return this.tier
    if (!this.connecting && !this.closed && Date.now() >= this.retryAt) this.connecting = this.connect()
    return undefined
  }

  /** Whether this thread reads with its own connection now. */
  get ready(): boolean {
    return this.tier !== undefined
  }

  private async connect(): Promise<void> {
    try {
      // A copy, so the handle (possibly this thread's own object) is left as it was; revive turns cloned byte arrays back into Buffers.
      const option = revive(structuredClone(this.redis)) as PlainRedisOption
      const { client } = await connectRedis(option, this.opts, this.emitError)
      if (this.closed) {
        client.disconnect()
        return
      }
      unrefSockets(client)
      const o = this.opts
      const breaker = o.circuitBreaker ? new CircuitBreaker(o.circuitBreaker.threshold, o.circuitBreaker.resetTimeout) : undefined
      this.tier = new RedisTier(client, true, o.batchGets, this.meter, o.maxInFlight, breaker, o.commandTimeout, o.clusterReadScript)
    } catch (err) {
      // Reads keep going through the owner; the thread's cache reports why.
      this.emitError(err as Error)
      this.retryAt = Date.now() + Math.max(MIN_RETRY_MS, this.opts.circuitBreaker ? this.opts.circuitBreaker.resetTimeout : 0)
    } finally {
      this.connecting = undefined
    }
  }

  /** Keeps the thread alive until `p` settles. */
  track<T>(p: Promise<T>): Promise<T> {
    if (this.pending++ === 0) this.keepAlive.ref()
    return p.then(
      (v) => {
        if (--this.pending === 0) this.keepAlive.unref()
        return v
      },
      (err: unknown) => {
        if (--this.pending === 0) this.keepAlive.unref()
        throw err
      },
    )
  }

  async close(): Promise<void> {
    this.closed = true
    await this.connecting
    const tier = this.tier
    this.tier = undefined
    clearInterval(this.keepAlive)
    await tier?.close()
  }
}

/** Unrefs the client's sockets, now and after every reconnect (each node's, on a Cluster). */
function unrefSockets(client: Redis | Cluster): void {
  const onNode = (node: Redis) => {
    node.stream?.unref?.()
    node.on('connect', () => node.stream?.unref?.())
  }
  if ((client as Cluster).isCluster) {
    const cluster = client as Cluster
    for (const node of cluster.nodes()) onNode(node)
    cluster.on('+node', onNode)
  } else {
    onNode(client as Redis)
  }
}
