/**
 * Group commit for the write-ahead log's appends: the records appended in one tick
 * (and those appended while a group is being written) go out as one group, in call
 * order, so they share one write and one fdatasync. With `onePerGroup` (fsync
 * 'always') every record is a group of its own.
 *
 * Durability of an acknowledged append (the promise `append` returns resolved):
 *   'always'  one write + fdatasync per append: the record is on disk. Survives a
 *             process crash and an OS crash / power loss.
 *   'batch'   group commit: the appends of one tick (and those that arrive while a
 *             write is in flight) go out in one write and share one fdatasync;
 *             each append resolves after that fdatasync. Same guarantee as
 *             'always' (on disk when acknowledged), fewer fsyncs under load.
 *   'none'    one write per group, never fsynced (except on close): the record is
 *             in the OS page cache when acknowledged. Survives a crash of the
 *             process (SIGKILL, OOM kill), NOT an OS crash or power loss: then the
 *             writes of roughly the last 30 s (Linux dirty_expire_centisecs,
 *             default 3000) can be lost, and a segment may lose its tail or whole
 *             records, which replay reports as damage or missing records.
 *   New segment files and checkpoint renames are fsynced with their directory
 *   under 'always' and 'batch'.
 */

export interface PendingAppend {
  record: Buffer
  resolve(seq: number): void
  reject(err: unknown): void
}

export class GroupCommit {
  #pending: PendingAppend[] = []
  #scheduled = false
  #pumping: Promise<void> | undefined

  /** `writeGroup` writes a group and settles each of its appends; it never rejects. */
  constructor(
    private readonly onePerGroup: boolean,
    private readonly writeGroup: (group: PendingAppend[]) => Promise<void>,
  ) {}

  /** A group is being written. */
  get busy(): boolean {
    return this.#pumping !== undefined
  }

  /** Queues a record for the next group: resolves with its sequence number once its group is written. */
  push(record: Buffer): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#pending.push({ record, resolve, reject })
      this.#schedule()
    })
  }

  /** Writes every record pending now (for close). */
  async flush(): Promise<void> {
    while (this.#pending.length > 0 || this.#pumping) await this.#pump()
  }

  #schedule(): void {
    if (this.#scheduled || this.#pumping) return
    this.#scheduled = true
    // Everything appended in this tick joins the first group.
    setImmediate(() => {
      this.#scheduled = false
      void this.#pump()
    })
  }

  #pump(): Promise<void> {
    if (this.#pumping) return this.#pumping
    if (this.#pending.length === 0) return Promise.resolve()
    const run = async (): Promise<void> => {
      while (this.#pending.length > 0) {
        const group = this.onePerGroup ? this.#pending.splice(0, 1) : this.#pending.splice(0)
        await this.writeGroup(group)
      }
    }
    this.#pumping = run().finally(() => {
      this.#pumping = undefined
      // Appends made between the last group and this callback.
      if (this.#pending.length > 0) this.#schedule()
    })
    return this.#pumping
  }
}
