import { randomUUID } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'
import { L2UnavailableError } from '../errors.js'
import type { CounterOp, Tier, TierWrite } from '../tiers/tier.js'
import { fromWire, revive } from './protocol.js'
import type { RemoteMethod, Request, Response } from './protocol.js'

interface Pending {
  resolve(v: unknown): void
  reject(e: unknown): void
  timer: NodeJS.Timeout
}

/**
 * The L2 of an attached thread: every call is sent to the owning thread's
 * TierServer and answered there. Requests carry ids, so a late answer to a request
 * that already timed out is dropped. The reply channel keeps the thread alive only
 * while requests are pending.
 */
export class RemoteTier implements Tier {
  private readonly requests: BroadcastChannel
  private readonly replies: BroadcastChannel
  private readonly replyName = `nearcache-reply:${randomUUID()}`
  private readonly pending = new Map<number, Pending>()
  private outbox: Request[] = []
  private nextId = 1

  constructor(
    /** The owner's TierServer channel. */
    readonly channel: string,
    private readonly timeoutMs: number,
  ) {
    this.requests = new BroadcastChannel(channel)
    this.requests.unref()
    this.replies = new BroadcastChannel(this.replyName)
    this.replies.unref()
    this.replies.onmessage = (ev) => {
      for (const res of (ev as unknown as { data: Response[] }).data) this.answer(res)
    }
  }

  private answer(res: Response): void {
    const p = this.pending.get(res.id)
    if (!p) return
    this.pending.delete(res.id)
    clearTimeout(p.timer)
    if (this.pending.size === 0) this.replies.unref()
    if (res.ok) p.resolve(revive(res.value))
    else p.reject(fromWire(res.error as NonNullable<Response['error']>))
  }

  private call<T>(method: RemoteMethod, args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++
      const timer = setTimeout(() => {
        this.pending.delete(id)
        if (this.pending.size === 0) this.replies.unref()
        reject(new L2UnavailableError(`The thread that owns this cache's Redis connections did not answer ${method} within ${this.timeoutMs} ms; is the owning cache still open?`))
      }, this.timeoutMs)
      timer.unref()
      if (this.pending.size === 0) this.replies.ref()
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      // Requests made in one tick travel in one message.
      this.outbox.push({ id, reply: this.replyName, method, args })
      if (this.outbox.length === 1) process.nextTick(() => this.flush())
    })
  }

  private flush(): void {
    const batch = this.outbox
    this.outbox = []
    this.requests.postMessage(batch)
  }

  peek(): undefined {
    return undefined
  }
  get(key: string, fresh?: boolean): Promise<Buffer | null> {
    return this.call('get', fresh ? [key, true] : [key])
  }
  mget(keys: string[]): Promise<(Buffer | null)[]> {
    return this.call('mget', [keys])
  }
  set(writes: TierWrite[]): Promise<void> {
    return this.call('set', [writes])
  }
  casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    return this.call('casSet', [w, expectSha1])
  }
  take(keys: string[]): Promise<(Buffer | null)[]> {
    return this.call('take', [keys])
  }
  counters(keys: string[], op: CounterOp): Promise<(number | null)[]> {
    return this.call('counters', [keys, op])
  }
  deletePrefixes(prefixes: string[]): Promise<number> {
    return this.call('deletePrefixes', [prefixes])
  }
  lock(key: string, token: string, px: number): Promise<boolean> {
    return this.call('lock', [key, token, px])
  }
  unlock(key: string, token: string): Promise<void> {
    return this.call('unlock', [key, token])
  }

  rateLimit(key: string, intervalUs: number, toleranceUs: number, cost: number): Promise<number> {
    return this.call('rateLimit', [key, intervalUs, toleranceUs, cost])
  }

  async close(): Promise<void> {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer)
      p.reject(new L2UnavailableError('The cache was closed while this request was in flight.'))
      this.pending.delete(id)
    }
    this.requests.close()
    this.replies.close()
  }
}
