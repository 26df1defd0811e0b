import { Worker } from 'node:worker_threads'
import type { CacheHandle } from '../../src/index.js'

/** Starts a worker thread (TypeScript, through tsx) with `workerData`; resolves once it says ready. */
export async function startWorker(fixture: string, workerData: unknown): Promise<Worker> {
  // The entry is a one-line loader that registers tsx in the worker, then imports the .ts fixture.
  const url = new URL(`../fixtures/${fixture}`, import.meta.url).href
  const boot = `import('tsx/esm/api').then((m) => m.register()).then(() => import(${JSON.stringify(url)}))`
  const w = new Worker(boot, { eval: true, workerData })
  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: { ready?: boolean }) => {
      if (m?.ready) {
        w.off('message', onMessage)
        resolve()
      }
    }
    w.on('message', onMessage)
    w.once('error', reject)
    w.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)))
  })
  return w
}

/** A cache living in another thread, driven by messages: `await remote.call('get', 'k')`. */
export class ThreadCache {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>()

  private constructor(readonly worker: Worker) {
    worker.on('message', (m: { id?: number; ok: boolean; value?: unknown; code?: string; message?: string }) => {
      const w = m.id === undefined ? undefined : this.waiting.get(m.id)
      if (!w || m.id === undefined) return
      this.waiting.delete(m.id)
      if (m.ok) w.resolve(m.value)
      else w.reject(Object.assign(new Error(m.message), { code: m.code }))
    })
  }

  static async start(handle: CacheHandle, redis?: unknown): Promise<ThreadCache> {
    return new ThreadCache(await startWorker('cache_worker.ts', { handle, redis }))
  }

  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    return this.callIn<T>(undefined, op, ...args)
  }

  callIn<T = unknown>(ns: string | undefined, op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.worker.postMessage({ id, op, args, ns })
    })
  }

  async stop(): Promise<void> {
    await this.call('close')
    await this.worker.terminate()
  }
}
