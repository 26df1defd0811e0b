import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { SharedTable } from '../l1/shared_table.js'
import { channelFor, LEGACY_CHANNEL, rootNamespace } from '../keys.js'
import { InvalidOptionError } from '../errors.js'
import type { Keyring } from '../security/keyring.js'
import { BusSigner } from './bus_signer.js'
import { encodeMessages, LEGACY_UNSIGNED, MAX_MESSAGE_CHARS, parseMessage } from './bus_protocol.js'

/**
 * Cross-process L1 coherence over Redis pub/sub. Every write, delete and
 * invalidation that reaches L2 from any thread of this process is announced on
 * its root namespace's channel (batched per tick, split to the protocol's
 * limits: see bus_protocol.ts); every other process drops the affected L1
 * entries when the announcement arrives (which also voids fills in flight there,
 * through the table's epoch words and root generations). On a Cluster, PUBLISH
 * reaches subscribers on every node, so one subscription per process suffices.
 *
 * No permanent staleness: while the subscriber is not connected the table is
 * marked untrusted (no L1 fills in any thread) and flushed; it is flushed again
 * when the subscription is back, and the root's entries are dropped whenever a
 * gap in a publisher's sequence numbers shows that a message was lost.
 *
 * Hostile input: every message is validated before use; a bad one is dropped and
 * counted (`onRejected`). With `encryption` keys, every message sent is signed
 * and every message received must carry a valid signature by a listed key
 * (bus_signer.ts); unsigned, forged and unknown-key messages are bad ones. The work one message can cause is bounded: at most
 * MAX_KEYS key removals, and prefixes cost O(1) (the root's generation is
 * bumped). Root flushes caused by messages (gaps, newer protocol versions) are
 * rate-limited: at most one per FLUSH_INTERVAL_MS, later ones coalesce into one
 * at the end of the interval. Per-publisher state is bounded (MAX_PUBLISHERS,
 * least recently heard forgotten first).
 */

/** Root flushes caused by messages: at most one per this many ms; later requests coalesce. */
export const FLUSH_INTERVAL_MS = 100
/** Publishers whose sequence numbers are remembered per channel; the least recently heard go first. */
export const MAX_PUBLISHERS = 1024

export type FlushReason = 'disconnect' | 'gap' | 'version' | 'overflow'

/**
 * What the bus did, for observers (`InvalidationBus.onAnnounce`). Keys and
 * prefixes are full internal keys: `<namespace>:<key>` for data, `__nc|t|...`
 * for tag epochs.
 *
 * - `sent`: an announcement this process published.
 * - `received`: an announcement from another process (`publisher`, its bus id),
 *   applied to this process's L1.
 * - `flush`: L1 copies were dropped because announcements may have been lost or
 *   could not be read: the subscriber connection went down or came back
 *   (`reason: 'disconnect'`, the whole L1: `prefixes: ['']`), a publisher's
 *   sequence numbers skipped (`'gap'`), a newer nearcache sent a message this
 *   version cannot read (`'version'`), or a process of the previous protocol sent
 *   a message over the limits (`'overflow'`); for those, the root namespace's
 *   entries (`prefixes: ['<root>:']`).
 */
export type InvalidationNotice =
  | { direction: 'sent'; keys: string[]; prefixes: string[] }
  | { direction: 'received'; keys: string[]; prefixes: string[]; publisher: string }
  | { direction: 'flush'; keys: []; prefixes: string[]; reason: FlushReason }

export interface BusOptions {
  /** Also publish on and listen to the pre-1.0 global channel (rolling upgrades). */
  legacyChannel: boolean
  /** Client errors of the subscriber connection. */
  onError: (e: Error) => void
  /**
   * The encryption keys: sign every message with the primary key, accept only
   * messages signed by a listed key. Incompatible with `legacyChannel` (the old
   * format has no signature); refused here too, not only by the option checks.
   */
  keyring?: Keyring | false | undefined
}

/** A sequence counter per channel for this publisher. */
interface Outbox {
  channel: string
  legacy: boolean
  seq: number
}

export class InvalidationBus {
  readonly origin = randomUUID()
  readonly channel: string
  private readonly root: string
  private readonly outboxes: Outbox[]
  private keys = new Set<string>()
  private prefixes = new Set<string>()
  private scheduled = false
  /** Per channel: publisher id → last sequence number (insertion order = least recently heard first). */
  private readonly lastSeen = new Map<string, Map<string, number>>()
  private closed = false
  private lastFlushAt = -Infinity
  private flushTimer: NodeJS.Timeout | undefined
  private pendingFlush: FlushReason | undefined
  /** Figures for stats and tests. */
  sent = 0
  received = 0
  flushes = 0
  rejected = 0
  /**
   * Observer of every announcement sent, every one received and applied, and every
   * flush. Called synchronously; what it throws is ignored, so an observer cannot
   * break the bus.
   */
  onAnnounce: (a: InvalidationNotice) => void = () => {}
  /** Called for every message dropped by validation, with why (never the message's content). */
  onRejected: (why: string, channel: string) => void = () => {}

  private readonly signer: BusSigner | undefined

  private constructor(
    private readonly pub: Redis | Cluster,
    private readonly sub: Redis | Cluster | undefined,
    namespace: string,
    private readonly table: SharedTable | undefined,
    legacyChannel: boolean,
    keyring: Keyring | false | undefined,
  ) {
    this.signer = keyring ? new BusSigner(keyring) : undefined
    this.root = rootNamespace(namespace)
    this.channel = channelFor(namespace)
    this.outboxes = [{ channel: this.channel, legacy: false, seq: 0 }]
    if (legacyChannel) this.outboxes.push({ channel: LEGACY_CHANNEL, legacy: true, seq: 0 })
  }

  /**
   * Starts the bus of `namespace`'s root. Without a table (a process with no L1) it
   * only announces: other processes must still hear about the changes this one makes.
   */
  static async start(client: Redis | Cluster, namespace: string, table: SharedTable | undefined, opts: BusOptions): Promise<InvalidationBus> {
    if (opts.keyring && opts.legacyChannel) throw new InvalidOptionError(LEGACY_UNSIGNED)
    if (!table) return new InvalidationBus(client, undefined, namespace, undefined, opts.legacyChannel, opts.keyring)
    const sub = client.duplicate()
    const bus = new InvalidationBus(client, sub, namespace, table, opts.legacyChannel, opts.keyring)
    sub.on('error', opts.onError)
    sub.on('message', (ch: unknown, text: unknown) => bus.onMessage(ch, text))
    const channels = bus.outboxes.map((o) => o.channel)
    // Bumped on every loss of the connection: a confirmation that arrives after a later loss retrusts nothing.
    let connection = 0
    const lost = () => {
      connection++
      bus.untrust()
    }
    sub.on('close', lost)
    sub.on('reconnecting', lost)
    sub.on('end', lost)
    // L1 is trusted again only once Redis has confirmed the subscription on the new
    // connection. ioredis emits 'ready' as soon as the connection is up and sends its
    // own re-SUBSCRIBE in the same step, without waiting for the reply: a PUBLISH that
    // Redis handles before that SUBSCRIBE reaches no one here, and a lost first
    // message of a publisher shows no sequence gap. Trusting on 'ready' let this
    // process fill L1 from Redis in that window and keep the copy a lost message
    // should have dropped (until l1.ttl). So on 'ready' we SUBSCRIBE once more and
    // retrust when its reply is in: Redis answers one connection's commands in order,
    // so by then both subscriptions are in effect and every later PUBLISH reaches us.
    // Until then the table stays untrusted (no L1 fills anywhere), and the retrust
    // flushes again, which also voids the fills started before it.
    sub.on('ready', () => {
      if (table.trusted || bus.closed) return
      const at = connection
      sub.subscribe(...channels).then(
        () => {
          if (at === connection && !table.trusted && !bus.closed) bus.retrust()
        },
        () => {}, // lost again before the reply: the next 'ready' tries again
      )
    })
    table.setTrusted(false)
    await sub.subscribe(...channels)
    table.setTrusted(true)
    return bus
  }

  /** The subscriber's message handler: nothing a message contains can make it throw. */
  private onMessage(ch: unknown, text: unknown): void {
    try {
      if (ch === this.channel) this.receive(this.channel, text, false)
      else if (ch === LEGACY_CHANNEL && this.outboxes.length > 1) this.receive(LEGACY_CHANNEL, text, true)
    } catch (err) {
      // A bug of ours, not the message's; still never let it out of the event handler.
      this.reject(`the message could not be applied (${err instanceof Error ? err.name : 'error'})`, String(ch))
    }
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

  private flush(reason: FlushReason): void {
    this.flushes++
    const prefixes = reason === 'disconnect' ? [''] : [`${this.root}:`]
    this.table?.invalidateRoots(prefixes)
    this.notify({ direction: 'flush', keys: [], prefixes, reason })
  }

  /** A root flush asked for by a message: at once, or coalesced at the end of the current interval. */
  private requestFlush(reason: FlushReason): void {
    const now = performance.now()
    if (this.flushTimer === undefined && now - this.lastFlushAt >= FLUSH_INTERVAL_MS) {
      this.lastFlushAt = now
      this.flush(reason)
      return
    }
    this.pendingFlush = reason
    if (this.flushTimer !== undefined) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      const r = this.pendingFlush
      this.pendingFlush = undefined
      if (r === undefined || this.closed) return
      this.lastFlushAt = performance.now()
      this.flush(r)
    }, Math.max(1, FLUSH_INTERVAL_MS - (now - this.lastFlushAt)))
    this.flushTimer.unref()
  }

  private reject(why: string, channel: string): void {
    this.rejected++
    try {
      this.onRejected(why, channel)
    } catch {
      // An observer cannot break the bus.
    }
  }

  private receive(channel: string, text: unknown, legacy: boolean): void {
    if (this.signer) {
      if (typeof text !== 'string') return this.reject('the message is not text', channel)
      // Bounded before the MAC is computed: no hashing of arbitrarily long texts.
      if (text.length > MAX_MESSAGE_CHARS) return this.reject(`the message is ${text.length} characters long, over ${MAX_MESSAGE_CHARS}`, channel)
      const v = this.signer.verify(channel, text)
      if (!v.ok) return this.reject(v.why, channel)
      text = v.text
    }
    const parsed = parseMessage(text, this.root, legacy, this.signer !== undefined)
    if (parsed.kind === 'bad') return this.reject(parsed.why, channel)
    if (parsed.kind === 'overflow') {
      this.received++
      return this.requestFlush('overflow')
    }
    if (parsed.kind === 'newer') {
      this.reject(`the message is of protocol version ${parsed.version}, newer than this nearcache reads; its namespace's L1 copies were dropped`, channel)
      return this.requestFlush('version')
    }
    const m = parsed.message
    if (m.origin === this.origin) return
    this.received++
    const gap = this.sawGap(channel, m.origin, m.seq)
    const now = Date.now()
    for (const k of m.keys) this.table?.take(k, now)
    if (m.prefixes.length) this.table?.invalidateRoots(m.prefixes)
    this.notify({ direction: 'received', keys: m.keys, prefixes: m.prefixes, publisher: m.origin })
    if (gap) this.requestFlush('gap')
  }

  /** Records a publisher's sequence number; answers whether messages were lost since its last one. */
  private sawGap(channel: string, origin: string, seq: number): boolean {
    let seen = this.lastSeen.get(channel)
    if (!seen) this.lastSeen.set(channel, (seen = new Map()))
    const last = seen.get(origin)
    seen.delete(origin)
    seen.set(origin, seq)
    if (seen.size > MAX_PUBLISHERS) seen.delete(seen.keys().next().value as string)
    return last !== undefined && seq !== last + 1
  }

  private notify(a: InvalidationNotice): void {
    try {
      this.onAnnounce(a)
    } catch {
      // The bus must go on whatever an observer does.
    }
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
    const keys = [...this.keys]
    const prefixes = [...this.prefixes]
    this.keys = new Set()
    this.prefixes = new Set()
    const sends: Promise<unknown>[] = []
    for (const box of this.outboxes) {
      for (const unsigned of encodeMessages(this.origin, () => box.seq++, keys, prefixes, this.root, box.legacy)) {
        const text = this.signer ? this.signer.sign(box.channel, unsigned) : unsigned
        this.sent++
        // A lost announcement is seen by receivers as a sequence gap (they flush).
        sends.push(this.pub.publish(box.channel, text).catch(() => {}))
      }
    }
    this.sending = Promise.all(sends)
    // Copies: the observer may keep or change them without touching the message.
    this.notify({ direction: 'sent', keys: [...keys], prefixes: [...prefixes] })
  }

  /** Sends what is pending and waits for it to reach Redis, then unsubscribes. */
  async close(): Promise<void> {
    this.send()
    this.closed = true
    if (this.flushTimer) clearTimeout(this.flushTimer)
    await this.sending
    this.sub?.disconnect()
  }
}
