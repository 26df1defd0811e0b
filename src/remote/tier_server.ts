import { randomUUID } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'
import type { Tier } from '../tier.js'
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

  constructor(private readonly l2: Tier) {
    this.requests = new BroadcastChannel(this.channel)
    this.requests.unref()
    this.requests.onmessage = (ev) => void this.handle((ev as unknown as { data: Request }).data)
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
    let out = this.replies.get(req.reply)
    if (!out) {
      out = new BroadcastChannel(req.reply)
      out.unref()
      this.replies.set(req.reply, out)
    }
    out.postMessage(res)
  }

  close(): void {
    this.requests.close()
    for (const c of this.replies.values()) c.close()
    this.replies.clear()
  }
}
