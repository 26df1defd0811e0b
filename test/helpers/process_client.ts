import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { CacheOptions } from '../../src/index.js'

/** How Infinity crosses JSON to test/fixtures/process_cache.ts (JSON would make it null). */
export const INFINITY = '__Infinity__'

/** A cache in another Node process, driven over IPC: `await other.call('get', 'k')`. */
export class ProcessCache {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>()

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id?: number; ok: boolean; value?: unknown; code?: string; message?: string }) => {
      const w = m.id === undefined ? undefined : this.waiting.get(m.id)
      if (!w || m.id === undefined) return
      this.waiting.delete(m.id)
      if (m.ok) w.resolve(m.value)
      else w.reject(Object.assign(new Error(m.message), { code: m.code }))
    })
  }

  /** Options cross to the child as JSON; Infinity (a TTL of no expiry) travels as this marker. */
  static async start(options: CacheOptions): Promise<ProcessCache> {
    const file = new URL('../fixtures/process_cache.ts', import.meta.url)
    const child = fork(file, [JSON.stringify(options, (_k, v: unknown) => (v === Infinity ? INFINITY : v))], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    await new Promise<void>((resolve, reject) => {
      child.on('message', (m: { ready?: boolean }) => m?.ready && resolve())
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`cache process exited with ${code} before it was ready`)))
    })
    return new ProcessCache(child)
  }

  call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ id, op, args })
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((r) => this.child.once('exit', r))
    await this.call('close').catch(() => {})
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))])
    this.child.kill('SIGKILL')
  }
}
