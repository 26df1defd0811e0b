import net from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { InvalidationNotice, NearCache } from '../../src/index.js'
import { channelFor, dataKey } from '../../src/keys.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'

/**
 * The re-subscribe window, against a real server: after the subscriber reconnects,
 * L1 must not be trusted before Redis has confirmed the SUBSCRIBE. A TCP relay in
 * front of the server (bytes passed through, nothing answered by the test) cuts the
 * subscriber's connection and then holds its SUBSCRIBE, which opens the window
 * for as long as the test needs: a read in it must not fill L1, since a publish in
 * it is not delivered to this process.
 */

/** A TCP relay to `port` that can cut the subscriber's connections and hold their SUBSCRIBE. */
class Relay {
  readonly server: net.Server
  private readonly sockets = new Set<net.Socket>()
  private readonly subscribers = new Set<net.Socket>()
  private holding = false
  private readonly held: (() => void)[] = []
  private onHeld: (() => void) | undefined

  constructor(upstreamPort: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort })
      let holdThis = false
      const pending: Buffer[] = []
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('error', () => {})
        s.on('close', () => {
          this.sockets.delete(s)
          client.destroy()
          upstream.destroy()
        })
      }
      upstream.on('data', (b: Buffer) => client.write(b))
      client.on('data', (b: Buffer) => {
        if (/subscribe/i.test(b.toString('latin1'))) {
          this.subscribers.add(client)
          if (this.holding) holdThis = true
        }
        if (!holdThis) return void upstream.write(b)
        if (pending.length === 0) {
          this.held.push(() => {
            for (const p of pending.splice(0)) upstream.write(p)
            holdThis = false
          })
          this.onHeld?.()
        }
        pending.push(b)
      })
    })
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r))
    return (this.server.address() as net.AddressInfo).port
  }

  /** Cuts every subscriber connection; their next SUBSCRIBE is held. Resolves when one is held. */
  cutSubscribersAndHold(): Promise<void> {
    this.holding = true
    const held = new Promise<void>((r) => (this.onHeld = r))
    for (const s of this.subscribers) s.destroy()
    this.subscribers.clear()
    return held
  }

  release(): void {
    this.holding = false
    this.onHeld = undefined
    for (const f of this.held.splice(0)) f()
  }

  close(): void {
    for (const s of this.sockets) s.destroy()
    this.server.close()
  }
}

describe('invalidation bus: re-subscribe after a reconnect', () => {
  let server: RedisServerHandle
  let relay: Relay
  let relayUrl: string
  let admin: Redis

  beforeAll(async () => {
    server = await startStandalone()
    relay = new Relay(server.port)
    relayUrl = `redis://127.0.0.1:${await relay.listen()}`
    admin = new Redis(server.url)
  })

  afterAll(async () => {
    admin?.disconnect()
    relay?.close()
    await server?.stop()
  })

  it('does not trust L1 between the reconnect and the confirmed SUBSCRIBE', async () => {
    const namespace = `resub${process.pid}`
    const opened: NearCache[] = []
    try {
      const reader = await createCache({ redis: relayUrl, namespace, l1: { ttl: Infinity }, onError: () => {} })
      opened.push(reader)
      const writer = await createCache({ redis: server.url, namespace, l1: false })
      opened.push(writer)
      await writer.set('k', 'v1')

      // The subscriber's connection drops; ioredis reconnects, is 'ready', and its SUBSCRIBE is held.
      await relay.cutSubscribersAndHold()
      // In the window: a read from Redis (must not stay in L1), then a change whose announcement nobody here hears.
      expect(await reader.get('k')).toBe('v1')
      await writer.set('k', 'v2')
      await writer.close() // waits until the announcement reached Redis
      opened.splice(opened.indexOf(writer), 1)

      // The SUBSCRIBE goes through; wait until an announcement published now reaches the reader.
      const heard = new Promise<void>((resolve) => {
        reader.on('invalidation', (n: InvalidationNotice) => {
          if (n.direction === 'received' && n.publisher === 'probe') resolve()
        })
      })
      relay.release()
      const probe = JSON.stringify({ v: 1, o: 'probe', s: 0, k: [dataKey(namespace, 'probe')] })
      while ((await admin.publish(channelFor(namespace), probe)) === 0) await new Promise((r) => setImmediate(r))
      await heard

      // The old value must not come from L1: the change was announced while nobody here listened.
      expect(await reader.get('k')).toBe('v2')
    } finally {
      relay.release()
      for (const c of opened) await c.close()
    }
  })
})
