import { constants } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { InvalidOptionError } from '../errors.js'
import { secureDir } from '../wal/wal_files.js'
import type { AuditRecord } from './audit_record.js'

const FILE_MODE = 0o600
const FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0)

/**
 * The audit log as a file: one JSON record per line, appended. When the file
 * reaches `maxFileBytes` it is rotated: `file` → `file.1` → … → `file.<maxFiles>`,
 * the oldest removed. The directory is created 0700, the file 0600 (an existing
 * one is tightened to 0600), and a symlink at the path is never followed.
 */
export class AuditFileSink {
  private fh: FileHandle | undefined
  private size = 0

  constructor(
    readonly file: string,
    private readonly maxFileBytes: number,
    private readonly maxFiles: number,
  ) {}

  /**
   * Opens the file once (creating it and its directory) and closes it again:
   * createCache calls this, so a path that cannot hold the log is refused at once
   * (E_INVALID_OPTION) instead of dropping every record later.
   */
  static async check(file: string): Promise<void> {
    const sink = new AuditFileSink(file, Infinity, 1)
    try {
      await sink.openFile()
    } catch (err) {
      if (err instanceof InvalidOptionError) throw err
      const code = (err as NodeJS.ErrnoException).code
      throw new InvalidOptionError(`audit.sink: the audit log ${file} cannot be opened for appending (${code ?? (err as Error).message}).`)
    } finally {
      await sink.close()
    }
  }

  private async openFile(): Promise<FileHandle> {
    if (this.fh) return this.fh
    await secureDir(dirname(this.file), 'audit log directory')
    const fh = await open(this.file, FLAGS, FILE_MODE)
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new InvalidOptionError(`audit.sink: the audit log ${basename(this.file)} is not a regular file.`)
      if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new InvalidOptionError(`audit.sink: the audit log ${this.file} is owned by another user (uid ${st.uid}).`)
      if ((st.mode & 0o777) !== FILE_MODE) await fh.chmod(FILE_MODE)
      this.size = st.size
    } catch (err) {
      await fh.close()
      throw err
    }
    this.fh = fh
    return fh
  }

  /**
   * Appends the records, rotating whenever the next line would take the file past
   * maxFileBytes (a file holds at least one line, so one huge record still lands).
   */
  async write(records: AuditRecord[]): Promise<void> {
    let fh = await this.openFile()
    let pending: Buffer[] = []
    let pendingBytes = 0
    for (const r of records) {
      const line = Buffer.from(`${JSON.stringify(r)}\n`)
      if (this.size + pendingBytes > 0 && this.size + pendingBytes + line.length > this.maxFileBytes) {
        if (pendingBytes > 0) await fh.write(Buffer.concat(pending))
        pending = []
        pendingBytes = 0
        await this.rotate()
        fh = await this.openFile()
      }
      pending.push(line)
      pendingBytes += line.length
    }
    if (pendingBytes > 0) {
      await fh.write(Buffer.concat(pending))
      this.size += pendingBytes
    }
  }

  private async rotate(): Promise<void> {
    await this.fh?.close()
    this.fh = undefined
    await unlink(`${this.file}.${this.maxFiles}`).catch(() => {})
    for (let i = this.maxFiles - 1; i >= 1; i--) await rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch(() => {})
    await rename(this.file, `${this.file}.1`)
  }

  async close(): Promise<void> {
    const fh = this.fh
    this.fh = undefined
    await fh?.close()
  }
}
