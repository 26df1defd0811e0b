/**
 * The write-ahead log's checkpoint: `<dir>/checkpoint` holds
 * `{"version":1,"acked":<seq>}`: records up to this sequence number are durable
 * elsewhere. It is replaced atomically (written to checkpoint.tmp, fsynced,
 * renamed, directory fsynced; no fsyncs under 'none'). A missing or unreadable
 * checkpoint means "nothing acknowledged": every record still in a segment is
 * replayed (at least once, never lost).
 */
import { readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createTemp, syncDir } from './wal_files.js'

export const CHECKPOINT = 'checkpoint'
const CHECKPOINT_TMP = 'checkpoint.tmp'

export interface CheckpointRead {
  /** Highest acknowledged seq (0 when there is no readable checkpoint). */
  acked: number
  /** A readable checkpoint was found. */
  found: boolean
  /** The file exists but could not be read or parsed. */
  unreadable: boolean
}

/** Reads the checkpoint of `dir` (whose file names are `names`) and removes a temp file left by a crash. */
export async function readCheckpoint(dir: string, names: readonly string[]): Promise<CheckpointRead> {
  const cp = names.includes(CHECKPOINT) ? await readFile(join(dir, CHECKPOINT), 'utf8').catch(() => '') : undefined
  const read: CheckpointRead = { acked: 0, found: cp !== undefined, unreadable: false }
  if (cp !== undefined) {
    let acked: unknown
    try {
      acked = (JSON.parse(cp) as { acked?: unknown }).acked
    } catch {
      acked = undefined
    }
    if (typeof acked === 'number' && Number.isSafeInteger(acked) && acked >= 0) read.acked = acked
    else {
      read.unreadable = true
      read.found = false
    }
  }
  await rm(join(dir, CHECKPOINT_TMP), { force: true })
  return read
}

/** Replaces the checkpoint of `dir` atomically with `acked` (fsynced when `sync`). */
export async function writeCheckpoint(dir: string, acked: number, sync: boolean): Promise<void> {
  const tmp = join(dir, CHECKPOINT_TMP)
  const fh = await createTemp(tmp)
  try {
    await fh.writeFile(`${JSON.stringify({ version: 1, acked })}\n`)
    if (sync) await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, join(dir, CHECKPOINT))
  if (sync) await syncDir(dir)
}
