import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { SharedTable } from '../l1/shared_table.js'
import type { Tier, TierWrite } from '../tier.js'

/**
 * Cross-process L1 coherence over Redis pub/sub. Every write, delete and
 * invalidation that reaches L2 from any thread of this process is announced on
 * one channel (batched per tick); every other process drops the affected L1
 * entries when the announcement arrives (which also voids fills in flight there,
 * through the table's epoch words). On a Cluster, PUBLISH reaches subscribers on
 * every node, so one subscription per process suffices.
 *
 * No permanent staleness: while the subscriber is not connected the table is
 * marked untrusted (no L1 fills in any thread) and flushed; it is flushed again
 * when the subscription is back, and whenever a gap in a publisher's sequence
 * numbers shows that a message was lost.
 */
interface Message {
  /** publisher id */
  o: string
  /** publisher sequence number */
  s: number
  /** keys */
  k?: string[]
  /** prefixes */
  p?: string[]
}

/**
 * What the bus did, for observers (`InvalidationBus.onAnnounce`). Keys and
 * prefixes are full internal keys: `<namespace>:<key>` for data, `__nc|t|...`
 * for tag epochs.
 *
 * - `sent`: an announcement this process published.
 * - `received`: an announcement from another process (`publisher`, its bus id),
 *   applied to this process's L1.
 * - `flush`: the whole L1 was dropped (`prefixes: ['']`) because announcements may
 *   have been lost: the subscriber connection went down or came back
 *   (`reason: 'disconnect'`), or a publisher's sequence numbers skipped (`'gap'`).
 */
export type InvalidationNotice =
  | { direction: 'sent'; keys: string[]; prefixes: string[] }
  | { direction: 'received'; keys: string[]; prefixes: string[]; publisher: string }
  | { direction: 'flush'; keys: []; prefixes: ['']; reason: 'disconnect' | 'gap' }

export class InvalidationBus {
  readonly origin = randomUUID()
  private seq = 0
  private keys = new Set<string>()
  private prefixes = new Set<string>()
  private scheduled = false
  private readonly lastSeen = new Map<string, number>()
  private closed = false
  /** Figures for stats and tests. */
  sent = 0
  received = 0
  flushes = 0
  /**
   * Observer of every announcement sent, every one received and applied, and every
   * full L1 flush. Called synchronously; what it throws is ignored, so an observer
   * cannot break the bus.
   */
  onAnnounce: (a: InvalidationNotice) => void = () => {}

  private notify(a: InvalidationNotice): void {
    try {
      this.onAnnounce(a)
    } catch {
      // The bus must go on whatever an observer does.
    }
  }

  private constructor(
    private readonly pub: Redis | Cluster,
    private readonly sub: Redis | Cluster | undefined,
    private readonly channel: string,
    private readonly table: SharedTable | undefined,
  ) {}

  /**
   * Starts the bus. Without a table (a process with no L1) it only announces:
   * other processes must still hear about the changes this one makes.
   */
  static async start(client: Redis | Cluster, channel: string, table: SharedTable | undefined, onError: (e: Error) => void): Promise<InvalidationBus> {
    if (!table) return new InvalidationBus(client, undefined, channel, undefined)
    const sub = client.duplicate()
    const bus = new InvalidationBus(client, sub, channel, table)
    sub.on('error', onError)
    sub.on('message', (ch: string, text: string) => {
      if (ch === channel) bus.receive(text)
    })
    const lost = () => bus.untrust()
    sub.on('close', lost)
    sub.on('reconnecting', lost)
    sub.on('end', lost)
    // ioredis re-subscribes by itself after a reconnect; messages sent meanwhile are lost.
    sub.on('ready', () => {
      if (!table.trusted && !bus.closed) bus.retrust()
    })
    table.setTrusted(false)
    await sub.subscribe(channel)
    table.setTrusted(true)
    return bus
  }

  private untrust(): void {
    if (this.closed) return
    this.table?.setTrusted(false)
    this.flush('disconnect')
  }

  private retrust(): void {
    this.flush('disconnect')
    this.lastSeen.clear()
    this.table?.setTrusted(true)
  }

  private flush(reason: 'disconnect' | 'gap'): void {
    this.flushes++
    this.table?.deletePrefixes([''])
    this.notify({ direction: 'flush', keys: [], prefixes: [''], reason })
  }

  private receive(text: string): void {
    let m: Message
    try {
      m = JSON.parse(text) as Message
    } catch {
      return
    }
    if (m.o === this.origin) return
    this.received++
    const last = this.lastSeen.get(m.o)
    this.lastSeen.set(m.o, m.s)
    if (last !== undefined && m.s !== last + 1) {
      this.flush('gap')
      return
    }
    const now = Date.now()
    const keys = m.k ?? []
    const prefixes = m.p ?? []
    for (const k of keys) this.table?.take(k, now)
    if (prefixes.length) this.table?.deletePrefixes(prefixes)
    this.notify({ direction: 'received', keys, prefixes, publisher: m.o })
  }

  announce(keys: readonly string[], prefixes: readonly string[] = []): void {
    for (const k of keys) this.keys.add(k)
    for (const p of prefixes) this.prefixes.add(p)
    if (!this.scheduled) {
      this.scheduled = true
      process.nextTick(() => this.send())
    }
  }

  private sending: Promise<unknown> = Promise.resolve()

  private send(): void {
    this.scheduled = false
    if (this.closed || (this.keys.size === 0 && this.prefixes.size === 0)) return
    const m: Message = { o: this.origin, s: this.seq++ }
    const keys = [...this.keys]
    const prefixes = [...this.prefixes]
    if (keys.length) m.k = keys
    if (prefixes.length) m.p = prefixes
    this.keys = new Set()
    this.prefixes = new Set()
    this.sent++
    // A lost announcement is seen by receivers as a sequence gap (they flush).
    this.sending = this.pub.publish(this.channel, JSON.stringify(m)).catch(() => {})
    // Copies: the observer may keep or change them without touching the message.
    this.notify({ direction: 'sent', keys: [...keys], prefixes: [...prefixes] })
  }

  /** Sends what is pending and waits for it to reach Redis, then unsubscribes. */
  async close(): Promise<void> {
    this.send()
    this.closed = true
    await this.sending
    this.sub?.disconnect()
  }
}

/** An L2 tier that announces every change it makes on the invalidation bus. */
export class AnnouncingTier implements Tier {
  constructor(
    private readonly l2: Tier,
    private readonly bus: InvalidationBus,
  ) {}

  get(key: string) {
    return this.l2.get(key)
  }
  peek(key: string) {
    return this.l2.peek(key)
  }
  fetch(key: string) {
    return this.l2.fetch(key)
  }
  getFresh(key: string) {
    return this.l2.getFresh(key)
  }
  mget(keys: string[]) {
    return this.l2.mget(keys)
  }
  readCounters(keys: string[], init: boolean) {
    return this.l2.readCounters(keys, init)
  }
  acquireLock(key: string, token: string, px: number) {
    return this.l2.acquireLock(key, token, px)
  }
  releaseLock(key: string, token: string) {
    return this.l2.releaseLock(key, token)
  }
  async set(writes: TierWrite[]): Promise<void> {
    try {
      await this.l2.set(writes)
    } finally {
      this.bus.announce(writes.map((w) => w.key))
    }
  }
  async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    const ok = await this.l2.casSet(w, expectSha1)
    if (ok) this.bus.announce([w.key])
    return ok
  }
  async take(keys: string[]): Promise<(Buffer | null)[]> {
    try {
      return await this.l2.take(keys)
    } finally {
      this.bus.announce(keys)
    }
  }
  async bumpCounters(keys: string[]): Promise<void> {
    try {
      await this.l2.bumpCounters(keys)
    } finally {
      this.bus.announce(keys)
    }
  }
  async deletePrefixes(prefixes: string[]): Promise<number> {
    try {
      return await this.l2.deletePrefixes(prefixes)
    } finally {
      this.bus.announce([], prefixes)
    }
  }
  async close(): Promise<void> {
    await this.bus.close()
    await this.l2.close()
  }
}
