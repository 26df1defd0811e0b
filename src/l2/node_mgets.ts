import type { Redis } from 'ioredis'

interface Pending {
  keys: string[]
  asking: boolean
  resolve(reply: unknown): void
  reject(err: unknown): void
}

/**
 * MGETs sent straight to Cluster node connections (key_routing.ts), written together:
 * those asked for in one tick for one node go out as one ioredis pipeline on that
 * connection, one socket write, as auto-pipelining would, but with no Cluster
 * redirection logic in it (the caller follows MOVED and ASK per command). An MGET
 * asked with ASKING is preceded by it in the pipeline, back to back.
 */
export class NodeMgets {
  private pending = new Map<Redis, Pending[]>()
  private scheduled = false

  /** The raw reply of `MGET keys` on `node` (after ASKING when `asking`). */
  mget(node: Redis, keys: string[], asking: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let q = this.pending.get(node)
      if (q === undefined) this.pending.set(node, (q = []))
      q.push({ keys, asking, resolve, reject })
      if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(() => this.flush())
      }
    })
  }

  private flush(): void {
    const all = this.pending
    this.pending = new Map()
    this.scheduled = false
    for (const [node, q] of all) {
      const p = node.pipeline()
      for (const c of q) {
        if (c.asking) p.asking()
        p.mgetBuffer(c.keys)
      }
      p.exec().then(
        (results) => {
          let r = 0
          for (const c of q) {
            if (c.asking) r++
            const [err, reply] = results?.[r++] ?? [new Error('Redis answered a pipeline with too few replies'), undefined]
            if (err) c.reject(err)
            else c.resolve(reply)
          }
        },
        (err: unknown) => {
          for (const c of q) c.reject(err)
        },
      )
    }
  }
}
