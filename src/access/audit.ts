import { randomUUID } from 'node:crypto'
import { BroadcastChannel } from 'node:worker_threads'
import { AuditDroppedError } from '../errors.js'
import { Throttle } from '../util/throttle.js'
import { AuditFileSink } from './audit_file_sink.js'
import { ADMIN_OPERATIONS, DENIALS, format, isRawRecord } from './audit_record.js'
import type { AuditRecord, KeyHasher, RawRecord } from './audit_record.js'

/** A function sink: called with batches of records, never awaited by a cache call. */
export type AuditSinkFunction = (records: AuditRecord[]) => void | Promise<void>

/** Where a call site reports: the owner's log, or (in an attached thread) a link to it. */
export interface AuditTrail {
  /** Whether a call of `operation` is recorded (denials and admin operations always are). */
  wants(operation: string, outcome?: string): boolean
  record(r: RawRecord): void
}

export interface AuditLogOptions {
  sink: string | AuditSinkFunction
  /** undefined = all. */
  operations: ReadonlySet<string> | undefined
  hasher: KeyHasher | undefined
  maxQueue: number
  maxFileBytes: number
  maxFiles: number
  /** Counts dropped records (stats().process.auditDropped). */
  onDropped: (n: number) => void
  /** The cache's 'error' event. */
  emitError: (err: Error) => void
}

/** Records per sink call. */
const BATCH = 512

/**
 * The audit log of a process (owner thread). `record` only queues: a cache call
 * never waits for the sink. A drain loop hands batches to the sink, one at a
 * time; while the sink is busy (a slow file, a slow function) records wait in a
 * queue of at most `maxQueue`, and past it they are dropped, counted, and reported
 * as an E_AUDIT_DROPPED 'error' at most once per second. A sink that throws or
 * rejects loses that batch (counted and reported the same way). Attached threads
 * send their records here through a BroadcastChannel (`channel`).
 */
export class AuditLog implements AuditTrail {
  readonly channel = `nearcache-audit:${randomUUID()}`
  /** For handles: the operations recorded (null = all). */
  readonly operations: string[] | null
  private readonly listener: BroadcastChannel
  private readonly file: AuditFileSink | undefined
  private queue: RawRecord[] = []
  private draining: Promise<void> | undefined
  private unreported = 0
  private readonly reports = new Throttle()
  private lastCause: unknown

  constructor(private readonly o: AuditLogOptions) {
    this.operations = o.operations ? [...o.operations] : null
    this.file = typeof o.sink === 'string' ? new AuditFileSink(o.sink, o.maxFileBytes, o.maxFiles) : undefined
    this.listener = new BroadcastChannel(this.channel)
    this.listener.unref()
    this.listener.onmessage = (ev) => {
      const data = (ev as unknown as { data: unknown }).data
      if (!Array.isArray(data)) return
      for (const r of data) if (isRawRecord(r) && this.wants(r.operation, r.outcome)) this.record(r)
    }
  }

  wants(operation: string, outcome?: string): boolean {
    return this.o.operations === undefined || this.o.operations.has(operation) || ADMIN_OPERATIONS.has(operation) || (outcome !== undefined && DENIALS.has(outcome))
  }

  record(r: RawRecord): void {
    if (this.queue.length >= this.o.maxQueue) {
      this.dropped(1, undefined)
      return
    }
    this.queue.push(r)
    if (!this.draining) this.draining = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain())
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const raw = this.queue.length <= BATCH ? this.queue : this.queue.slice(0, BATCH)
      this.queue = this.queue.length <= BATCH ? [] : this.queue.slice(BATCH)
      try {
        const records = raw.map((r) => format(r, this.o.hasher))
        if (this.file) await this.file.write(records)
        else await (this.o.sink as AuditSinkFunction)(records)
      } catch (err) {
        this.dropped(raw.length, err)
      }
    }
    this.draining = undefined
  }

  private dropped(n: number, cause: unknown): void {
    this.o.onDropped(n)
    this.unreported += n
    if (cause !== undefined) this.lastCause = cause
    if (!this.reports.due()) return
    const count = this.unreported
    const why = this.lastCause === undefined ? `the sink fell behind (more than ${this.o.maxQueue} records waiting)` : 'the sink failed'
    const err = new AuditDroppedError(`Dropped ${count} audit record${count === 1 ? '' : 's'}: ${why}. See stats().process.auditDropped.`, this.lastCause)
    this.unreported = 0
    this.lastCause = undefined
    try {
      this.o.emitError(err)
    } catch {
      // An 'error' listener that throws must not break the cache either.
    }
  }

  /** Waits for the queued records to reach the sink, then closes the file. */
  async close(): Promise<void> {
    this.listener.close()
    while (this.draining) await this.draining
    await this.file?.close()
  }
}

/**
 * An attached thread's trail: its records go, in one message per tick, to the
 * owner's AuditLog, which filters, hashes and writes them. The owner's
 * `operations` filter applies there.
 */
export class AuditLink implements AuditTrail {
  private readonly out: BroadcastChannel
  private outbox: RawRecord[] = []

  private closed = false

  constructor(
    readonly channel: string,
    /** The owner's `operations` (undefined = all). */
    private readonly ops: ReadonlySet<string> | undefined,
  ) {
    this.out = new BroadcastChannel(channel)
    this.out.unref()
  }

  wants(operation: string, outcome?: string): boolean {
    return this.ops === undefined || this.ops.has(operation) || ADMIN_OPERATIONS.has(operation) || (outcome !== undefined && DENIALS.has(outcome))
  }

  /** For handles passed on from this thread. */
  get operations(): string[] | null {
    return this.ops ? [...this.ops] : null
  }

  record(r: RawRecord): void {
    if (this.closed) return
    this.outbox.push(r)
    if (this.outbox.length === 1) process.nextTick(() => this.flush())
  }

  private flush(): void {
    const batch = this.outbox
    this.outbox = []
    if (batch.length === 0 || this.closed) return
    try {
      this.out.postMessage(batch)
    } catch {
      // The channel closed under us: the records are lost with the thread's cache.
    }
  }

  async close(): Promise<void> {
    this.flush()
    this.closed = true
    this.out.close()
  }
}
