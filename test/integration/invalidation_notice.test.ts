import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { kMinBytes } from '../../src/l1/layout.js'
import { rootIndexOf, SharedTable } from '../../src/l1/shared_table.js'
import { InvalidationBus } from '../../src/l2/invalidation_bus.js'
import type { InvalidationNotice } from '../../src/l2/invalidation_bus.js'

/**
 * InvalidationBus.onAnnounce against the harness's real Redis: what a process
 * sends, what it receives and applies, and the full flushes (sequence gap, lost
 * subscriber connection). Each test uses its own root namespace, so its own channel.
 */

const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  await initHash()
})

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function client(): Redis {
  const r = new Redis(inject('redisUrl'))
  cleanups.push(() => r.quit())
  return r
}

/** A started bus with an observer; `flushes` counts the flushes since it started (start itself flushes once). */
async function bus(namespace: string, table: SharedTable | undefined) {
  const b = await InvalidationBus.start(client(), namespace, table, { legacyChannel: false, onError: () => {} })
  cleanups.push(() => b.close())
  const notices: InvalidationNotice[] = []
  b.onAnnounce = (n) => notices.push(n)
  const base = b.flushes
  return {
    bus: b,
    notices,
    get flushes() {
      return b.flushes - base
    },
  }
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const value = new Uint8Array([1, 2, 3])

/**
 * A root namespace on another generation word than `root`'s: roots share 64 words,
 * and a prefix invalidation drops every root on its word (1 pair in 64 would).
 */
function unrelatedRoot(root: string): string {
  const enc = new TextEncoder()
  const idx = (r: string) => rootIndexOf(enc.encode(`${r}:`), enc.encode(`${r}:`).length)
  for (let i = 0; ; i++) if (idx(`other${i}`) !== idx(root)) return `other${i}`
}

describe('InvalidationBus.onAnnounce', () => {
  it('reports what it sends, and what it receives and applies to L1 with the publisher', async () => {
    const app = `app${randomUUID().slice(0, 8)}`
    const tableB = SharedTable.create(kMinBytes)
    const a = await bus(app, SharedTable.create(kMinBytes))
    const b = await bus(app, tableB)
    tableB.put(`${app}:user:1`, value, 0, Date.now())
    tableB.put(`${app}:item:9`, value, 0, Date.now())
    const other = `${unrelatedRoot(app)}:x`
    tableB.put(other, value, 0, Date.now())

    a.bus.announce([`${app}:user:1`, `__nc|t|${app}|tag`])
    a.bus.announce([`${app}:user:1`], [`${app}:item:`])
    await until('the announcement to arrive', () => b.notices.length > 0)

    // Batched per tick: one message, keys deduplicated.
    expect(a.notices).toEqual([{ direction: 'sent', keys: [`${app}:user:1`, `__nc|t|${app}|tag`], prefixes: [`${app}:item:`] }])
    expect(b.notices).toEqual([{ direction: 'received', keys: [`${app}:user:1`, `__nc|t|${app}|tag`], prefixes: [`${app}:item:`], publisher: a.bus.origin }])
    // Applied before the observer heard of it.
    expect(tableB.lookup(`${app}:user:1`, Date.now())).toBeNull()
    expect(tableB.lookup(`${app}:item:9`, Date.now())).toBeNull()
    expect(tableB.lookup(other, Date.now())).not.toBeNull()
    expect(a.bus.sent).toBe(1)
    expect(b.bus.received).toBe(1)
    expect(b.flushes).toBe(0)
    // A process does not report its own messages as received.
    expect(a.notices.filter((n) => n.direction === 'received')).toEqual([])
    expect(a.bus.received).toBe(0)
  })

  it('a process without L1 still reports what it sends', async () => {
    const app = `app${randomUUID().slice(0, 8)}`
    const a = await bus(app, undefined)
    a.bus.announce([`${app}:k`])
    await until('the send', () => a.notices.length > 0)
    expect(a.notices).toEqual([{ direction: 'sent', keys: [`${app}:k`], prefixes: [] }])
  })

  it('drops its root namespace from L1 when a publisher skips a sequence number', async () => {
    const app = `app${randomUUID().slice(0, 8)}`
    const table = SharedTable.create(kMinBytes)
    const b = await bus(app, table)
    const raw = client()
    await raw.publish(b.bus.channel, JSON.stringify({ v: 1, o: 'other', s: 1, k: [`${app}:a`] }))
    await until('the first message', () => b.notices.length === 1)
    table.put(`${app}:b`, value, 0, Date.now())
    await raw.publish(b.bus.channel, JSON.stringify({ v: 1, o: 'other', s: 5, k: [`${app}:c`] }))
    await until('the flush', () => b.notices.length === 3)
    expect(b.notices).toEqual([
      { direction: 'received', keys: [`${app}:a`], prefixes: [], publisher: 'other' },
      { direction: 'received', keys: [`${app}:c`], prefixes: [], publisher: 'other' },
      { direction: 'flush', keys: [], prefixes: [`${app}:`], reason: 'gap' },
    ])
    expect(table.lookup(`${app}:b`, Date.now())).toBeNull()
    expect(b.flushes).toBe(1)
    expect(b.bus.received).toBe(2)
  })

  it('reports full flushes when the subscriber connection drops and comes back', async () => {
    const app = `app${randomUUID().slice(0, 8)}`
    const table = SharedTable.create(kMinBytes)
    const b = await bus(app, table)
    table.put(`${app}:b`, value, 0, Date.now())
    // Kill this bus's subscriber connection only (other test files share the server).
    const sub = (b.bus as unknown as { sub: Redis & { stream: { localAddress: string; localPort: number } } }).sub
    const raw = client()
    expect(await raw.client('KILL', 'ADDR', `${sub.stream.localAddress}:${sub.stream.localPort}`)).toBe(1)
    await until('the subscription to come back', () => table.trusted && b.notices.length >= 2)
    expect(b.notices.length).toBe(b.flushes)
    for (const n of b.notices) expect(n).toEqual({ direction: 'flush', keys: [], prefixes: [''], reason: 'disconnect' })
    expect(table.lookup(`${app}:b`, Date.now())).toBeNull()
  })

  it('an observer that throws does not stop the bus', async () => {
    const app = `app${randomUUID().slice(0, 8)}`
    const table = SharedTable.create(kMinBytes)
    const a = await bus(app, undefined)
    const b = await bus(app, table)
    a.bus.onAnnounce = () => {
      throw new Error('observer broke')
    }
    b.bus.onAnnounce = () => {
      throw new Error('observer broke')
    }
    table.put(`${app}:k`, value, 0, Date.now())
    a.bus.announce([`${app}:k`])
    await until('the announcement to be applied', () => table.lookup(`${app}:k`, Date.now()) === null)
    expect(a.bus.sent).toBe(1)
    expect(b.bus.received).toBe(1)
  })
})
