import { randomUUID } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'
import type { Tier } from '../tiers/tier.js'
import { REMOTE_METHODS, revive, toWire } from './protocol.js'
import type { Request, Response } from './protocol.js'

/**
 * Runs, on the thread that owns the L2 connections, the L2 operations attached
 * threads send it, so one process keeps one set of Redis connections. It listens
 * on a BroadcastChannel (its name travels in the structured-cloneable handle) and
 * answers on each requester's own channel.
 */
export class TierServer {
  readonly channel = `nearcache:${randomUUID()}`
  private readonly requests: BroadcastChannel
  private readonly replies = new Map<string, BroadcastChannel>()
  private readonly allowed = new Set<string>(REMOTE_METHODS)

  private outboxes = new Map<string, Response[]>()

  constructor(private readonly l2: Tier) {
    this.requests = new BroadcastChannel(this.channel)
    this.requests.unref()
    this.requests.onmessage = (ev) => {
      for (const req of (ev as unknown as { data: Request[] }).data) void this.handle(req)
    }
  }

  private async handle(req: Request): Promise<void> {
    let res: Response
    try {
      if (!this.allowed.has(req.method)) throw new Error(`unknown method ${req.method}`)
      const fn = this.l2[req.method] as (...a: unknown[]) => Promise<unknown>
      res = { id: req.id, ok: true, value: await fn.apply(this.l2, revive(req.args) as unknown[]) }
    } catch (err) {
      res = { id: req.id, ok: false, error: toWire(err) }
    }
    // Answers ready in one tick go back to each requester in one message.
    let box = this.outboxes.get(req.reply)
    if (!box) {
      this.outboxes.set(req.reply, (box = []))
      process.nextTick(() => this.send(req.reply))
    }
    box.push(res)
  }

  private send(reply: string): void {
    const box = this.outboxes.get(reply)
    this.outboxes.delete(reply)
    if (!box) return
    let out = this.replies.get(reply)
    if (!out) {
      out = new BroadcastChannel(reply)
      out.unref()
      this.replies.set(reply, out)
    }
    out.postMessage(box)
  }

  close(): void {
    this.requests.close()
    for (const c of this.replies.values()) c.close()
    this.replies.clear()
  }
}
