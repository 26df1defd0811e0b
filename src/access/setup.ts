import type { ResolvedOptions } from '../options/options.js'
import { ProcField } from '../observability/stats.js'
import type { StatsBlock } from '../observability/stats.js'
import type { Tier } from '../tiers/tier.js'
import { AccessState } from './access_state.js'
import { AuditLink, AuditLog } from './audit.js'
import { AuditFileSink } from './audit_file_sink.js'
import { KeyHasher } from './audit_record.js'

/** What a handle carries of access control and audit, for attached threads (plain data and a SharedArrayBuffer). */
export interface AccessHandle {
  /** The principals' rate buckets (null without `access`). */
  buckets: SharedArrayBuffer | null
  /** The owner's audit log: its channel and `operations` (null = all); null without `audit`. */
  audit: { channel: string; operations: string[] | null } | null
}

/** createCache: a file sink must be a file this process can append to (E_INVALID_OPTION otherwise). */
export async function checkAuditSink(opts: ResolvedOptions): Promise<void> {
  if (opts.audit && typeof opts.audit.sink === 'string') await AuditFileSink.check(opts.audit.sink)
}

/** The owner thread's audit log, or undefined without `audit`. */
export function openAuditLog(opts: ResolvedOptions, stats: StatsBlock, emitError: (err: Error) => void): AuditLog | undefined {
  const a = opts.audit
  if (!a) return undefined
  let hasher = a.hashKey
  if (a.hashKeys && !hasher && opts.encryption) hasher = new KeyHasher(opts.encryption.keyring.primary.derive('audit'))
  return new AuditLog({
    sink: a.sink,
    operations: a.operations ? new Set(a.operations) : undefined,
    hasher: a.hashKeys ? hasher : undefined,
    maxQueue: a.maxQueue,
    maxFileBytes: a.maxFileBytes,
    maxFiles: a.maxFiles,
    onDropped: (n) => stats.process.add(ProcField.AuditDropped, n),
    emitError,
  })
}

/** An attached thread's link to the owner's audit log, from the handle. */
export function linkAudit(h: AccessHandle['audit']): AuditLink | undefined {
  return h ? new AuditLink(h.channel, h.operations ? new Set(h.operations) : undefined) : undefined
}

/** This thread's access state (undefined without `access`): the shared buckets, the L2's distributed limiter. */
export function accessState(
  opts: ResolvedOptions,
  buckets: SharedArrayBuffer | null | undefined,
  l2: Tier | undefined,
  trail: AuditLog | AuditLink | undefined,
  onError: (err: Error) => void,
): AccessState | undefined {
  if (!opts.access) return undefined
  const limit = l2?.rateLimit ? l2.rateLimit.bind(l2) : undefined
  return new AccessState(opts, AccessState.buckets(opts, buckets ?? undefined), opts.clock, limit, trail, onError)
}
