import { threadId } from 'node:worker_threads'
import { AuditFileSink } from './audit_file_sink.js'
import { format } from './audit_record.js'
import type { AuditRecord } from './audit_record.js'

/** What a CLI admin command reports about itself. */
export interface CommandRecord {
  /** 'restore', 'rekey', … */
  operation: string
  namespace: string
  /** 'ok' or the error code. */
  outcome: string
  /** Date.now() when the command started. */
  startedAt: number
  durationMs: number
  /** How many entries the command wrote or re-encrypted, when known. */
  keyCount?: number
}

/**
 * Appends the record of a CLI admin command (`nearcache restore`, `nearcache
 * rekey`) to an audit file, in the cache's format (principal 'cli'; `keys` empty,
 * `keyCount` the entries touched), with the same file rules (0600, 0700
 * directory, rotation). For the CLI's `--audit-file`: these commands run outside
 * any cache, so they cannot reach a cache's `audit` sink.
 */
export async function auditCommand(file: string, c: CommandRecord, limits: { maxFileBytes?: number; maxFiles?: number } = {}): Promise<AuditRecord> {
  const record = format(
    { time: c.startedAt, principal: 'cli', operation: c.operation, namespace: c.namespace, kind: 'keys', items: [], count: c.keyCount ?? 0, outcome: c.outcome, durationMs: c.durationMs, thread: threadId },
    undefined,
  )
  if (c.keyCount !== undefined) record.keyCount = c.keyCount
  const sink = new AuditFileSink(file, limits.maxFileBytes ?? 64 * 1024 * 1024, limits.maxFiles ?? 5)
  try {
    await sink.write([record])
  } finally {
    await sink.close()
  }
  return record
}
