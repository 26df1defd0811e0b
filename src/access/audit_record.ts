import { createHmac } from 'node:crypto'

/** The operations a cache records, by name (the facade's public calls). */
export const AUDITED = ['get', 'getSync', 'has', 'getMany', 'set', 'setMany', 'delete', 'deleteMany', 'getOrSet', 'compareAndSet', 'invalidateTags', 'invalidatePrefix', 'clear'] as const
export type AuditedOperation = (typeof AUDITED)[number]
/** Always recorded, whatever `operations` says. */
export const ADMIN_OPERATIONS: ReadonlySet<string> = new Set(['invalidateTags', 'invalidatePrefix', 'clear'])
/** Outcomes that are denials: always recorded. */
export const DENIALS: ReadonlySet<string> = new Set(['E_FORBIDDEN', 'E_RATE_LIMITED'])

/** At most this many keys (or tags) are written per record; `keyCount` has the total. */
export const MAX_RECORD_KEYS = 16
/** A key longer than this is cut (with '…') in a record that does not hash keys. */
export const MAX_RECORD_KEY_CHARS = 256

/** What a call site reports (any thread); the owner thread turns it into an AuditRecord. */
export interface RawRecord {
  /** Date.now() when the call started. */
  time: number
  principal: string | null
  operation: string
  namespace: string
  /** 'key': one key; 'keys': a batch; 'tags'; 'prefix'; 'none' (clear). */
  kind: 'key' | 'keys' | 'tags' | 'prefix' | 'none'
  /** The key(s), tags or prefix, as given (strings only; at most MAX_RECORD_KEYS + the count). */
  items: string[]
  count: number
  outcome: string
  durationMs: number
  thread: number
}

/**
 * One line of the audit log (JSON). Keys are relative to `namespace`; with
 * `hashKeys` each is `hmac-sha256:<32 hex>` (the first 128 bits of
 * HMAC-SHA-256 under the audit key), so equal keys can be correlated across
 * records without being readable.
 */
export interface AuditRecord {
  /** ISO 8601, UTC, when the call started. */
  time: string
  /** The principal of the view, or null for the plain cache (the application). */
  principal: string | null
  operation: string
  namespace: string
  key?: string
  keys?: string[]
  tags?: string[]
  prefix?: string
  /** How many keys (or tags) the call named, when `keys`/`tags` shows only the first 16. */
  keyCount?: number
  /** 'ok', or the error code (E_FORBIDDEN, E_RATE_LIMITED, E_L2_UNAVAILABLE, ...; 'error' for an error without one). */
  outcome: string
  durationMs: number
  /** worker_threads threadId of the calling thread (0 = the main thread). */
  thread: number
}

/** The items of a call, bounded: the first MAX_RECORD_KEYS strings and how many there were. */
export function boundedItems(items: unknown): { items: string[]; count: number } {
  if (typeof items === 'string') return { items: [items], count: 1 }
  if (!Array.isArray(items)) return { items: [], count: 0 }
  const out: string[] = []
  for (let i = 0; i < items.length && out.length < MAX_RECORD_KEYS; i++) {
    const k = items[i] as unknown
    out.push(typeof k === 'string' ? k : String(typeof k))
  }
  return { items: out, count: items.length }
}

/** Hides key names: a keyed hash (HMAC), so a known key's hash cannot be recomputed without the key. */
export class KeyHasher {
  readonly #key: Buffer
  /** Names the key without revealing it (HMAC of a fixed label): tells which key hashed a log. */
  readonly fingerprint: string
  constructor(key: Buffer) {
    this.#key = Buffer.from(key)
    this.fingerprint = createHmac('sha256', this.#key).update('nearcache audit key fingerprint').digest('hex').slice(0, 16)
  }
  hash(s: string): string {
    return `hmac-sha256:${createHmac('sha256', this.#key).update(s).digest('hex').slice(0, 32)}`
  }
  toJSON(): object {
    return { fingerprint: this.fingerprint }
  }
}

function cut(s: string): string {
  return s.length > MAX_RECORD_KEY_CHARS ? `${s.slice(0, MAX_RECORD_KEY_CHARS)}…` : s
}

/** The record written for `r`, its names hashed or bounded. */
export function format(r: RawRecord, hasher: KeyHasher | undefined): AuditRecord {
  const name = hasher ? (s: string) => hasher.hash(s) : cut
  const out: AuditRecord = { time: new Date(r.time).toISOString(), principal: r.principal, operation: r.operation, namespace: r.namespace } as AuditRecord
  const items = r.items.slice(0, MAX_RECORD_KEYS).map(name)
  if (r.kind === 'key' && items.length > 0) out.key = items[0]
  else if (r.kind === 'prefix' && items.length > 0) out.prefix = items[0]
  else if (r.kind === 'keys') out.keys = items
  else if (r.kind === 'tags') out.tags = items
  if ((r.kind === 'keys' || r.kind === 'tags') && r.count > items.length) out.keyCount = r.count
  // Written in this order: who, what, on which keys, then how it went.
  out.outcome = r.outcome
  out.durationMs = Math.round(r.durationMs * 1000) / 1000
  out.thread = r.thread
  return out
}

/** Whether a message from another thread is a RawRecord (checked before it is queued). */
export function isRawRecord(v: unknown): v is RawRecord {
  if (typeof v !== 'object' || v === null) return false
  const r = v as Record<string, unknown>
  return (
    typeof r.time === 'number' &&
    (r.principal === null || typeof r.principal === 'string') &&
    typeof r.operation === 'string' &&
    typeof r.namespace === 'string' &&
    typeof r.kind === 'string' &&
    Array.isArray(r.items) &&
    r.items.length <= MAX_RECORD_KEYS &&
    r.items.every((k) => typeof k === 'string') &&
    typeof r.count === 'number' &&
    typeof r.outcome === 'string' &&
    typeof r.durationMs === 'number' &&
    typeof r.thread === 'number'
  )
}
