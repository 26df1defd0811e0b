// What `nearcache events tail` reads and prints: bus announcements (from Redis pub/sub)
// and served events (from serveMetrics' /events), parsed, narrowed to a namespace, formatted.
import { CACHE_EVENT_TYPES } from '../observability/event_stream.js'
import type { CacheEventJSON, CacheEventType } from '../observability/event_stream.js'
import { inNamespace, namespacePrefixes } from '../keys.js'
import { parseMessage } from '../l2/bus_protocol.js'
import { oneLine, UsageError } from './errors.js'
import { jsonSafe, printable, quoted } from './output.js'

export interface Announcement {
  /** ISO time the command received it. */
  at: string
  /** The announcing process's bus id (the CLI's own start with 'nearcache-cli-'). */
  publisher: string
  seq: number
  keys: string[]
  prefixes: string[]
}

/**
 * One bus message of root namespace `root` as an announcement, validated as the
 * library validates it (src/l2/bus_protocol.ts); `{ rejected }` says why a
 * message was refused, without quoting it.
 */
export function parseAnnouncement(text: string, root: string, legacy = false, at = new Date()): Announcement | { rejected: string } {
  const parsed = parseMessage(text, root, legacy)
  if (parsed.kind === 'bad') return { rejected: parsed.why }
  if (parsed.kind === 'newer') return { rejected: `a message of protocol version ${parsed.version}, newer than this command reads` }
  if (parsed.kind === 'overflow') return { rejected: 'a message of the previous protocol over the limits (receivers drop the namespace from L1)' }
  const m = parsed.message
  return { at: at.toISOString(), publisher: m.origin, seq: m.seq, keys: m.keys, prefixes: m.prefixes }
}

/** The keys and prefixes that concern namespace `ns`; undefined when none do. */
export function narrowToNamespace(keys: readonly string[], prefixes: readonly string[], ns: string): { keys: string[]; prefixes: string[] } | undefined {
  const owned = namespacePrefixes(ns)
  const mine = (k: string) => inNamespace(k, ns)
  // A prefix concerns the namespace when it covers part of it, or all of it ('', 'sh' for 'shop:').
  const covers = (p: string) => mine(p) || owned.some((o) => o.startsWith(p))
  const k = keys.filter(mine)
  const p = prefixes.filter(covers)
  return k.length + p.length > 0 ? { keys: k, prefixes: p } : undefined
}

/** The announcement's keys and prefixes that concern namespace `ns` (its data keys and tag epochs); undefined when none do. */
export function forNamespace(a: Announcement, ns: string): Announcement | undefined {
  const n = narrowToNamespace(a.keys, a.prefixes, ns)
  return n ? { ...a, ...n } : undefined
}

export function formatAnnouncement(a: Announcement): string {
  const parts = [a.at, `publisher ${printable(a.publisher)}`, `seq ${a.seq}`]
  if (a.keys.length) parts.push(`keys ${a.keys.map(quoted).join(' ')}`)
  if (a.prefixes.length) parts.push(`prefixes ${a.prefixes.map(quoted).join(' ')}`)
  return parts.join('  ')
}

// ── events of one process, from its serveMetrics /events endpoint ──────────

/** An event as /events serves it (eventToJSON), or one of a type this version does not know. */
export type ServedEvent = CacheEventJSON | { type: string; at: number; [field: string]: unknown }

/**
 * The /events URL for what the user gave: a serveMetrics base URL
 * (`http://h:p`), its /events URL, or its /metrics URL (as `stats --from` takes);
 * with `?types=` when `types` are given.
 */
export function eventsUrl(from: string, types?: readonly string[]): string {
  let u: URL
  try {
    u = new URL(from)
  } catch {
    throw new UsageError(`--from takes an http:// or https:// URL (got ${JSON.stringify(from)})`, 'events')
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !/^https?:\/\/\S+$/.test(from)) {
    throw new UsageError(`--from takes an http:// or https:// URL (got ${JSON.stringify(from)})`, 'events')
  }
  const path = u.pathname.replace(/\/+$/, '')
  u.pathname = path.endsWith('/events') ? path : path.endsWith('/metrics') ? `${path.slice(0, -'/metrics'.length)}/events` : `${path}/events`
  if (types) u.searchParams.set('types', types.join(','))
  return u.toString()
}

/** The --type values (repeatable, comma-separated), checked against the known event types. */
export function parseTypes(values: readonly string[]): CacheEventType[] | undefined {
  const list = values.flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '')
  if (values.length === 0) return undefined
  if (list.length === 0) throw new UsageError(`--type needs at least one of ${CACHE_EVENT_TYPES.join(', ')}`, 'events')
  const out: CacheEventType[] = []
  for (const t of list) {
    if (!(CACHE_EVENT_TYPES as readonly string[]).includes(t)) {
      throw new UsageError(`unknown event type '${t}' for --type (known: ${CACHE_EVENT_TYPES.join(', ')})`, 'events')
    }
    if (!out.includes(t as CacheEventType)) out.push(t as CacheEventType)
  }
  return out
}

/**
 * The event as it concerns namespace `ns`: an eviction of one of its keys, an
 * invalidation narrowed to its keys and prefixes (a full flush, prefix '', concerns
 * every namespace); errors and circuit changes always. Undefined when it does not.
 */
export function eventForNamespace(e: ServedEvent, ns: string): ServedEvent | undefined {
  if (e.type === 'eviction') return typeof e.key === 'string' && inNamespace(e.key, ns) ? e : undefined
  if (e.type === 'invalidation') {
    const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])
    const n = narrowToNamespace(list(e.keys), list(e.prefixes), ns)
    return n ? { ...e, ...n } : undefined
  }
  return e
}

/** One readable line: time, type, then what happened. */
export function formatEvent(e: ServedEvent): string {
  const parts = [isoTime(e.at), printable(e.type)]
  const quotedList = (v: unknown) => (Array.isArray(v) ? v.map((x) => quoted(String(x))).join(' ') : '')
  const ev = e as Record<string, unknown>
  switch (e.type) {
    case 'eviction':
      parts.push(`key ${quoted(String(ev.key))}`)
      break
    case 'invalidation': {
      parts.push(printable(String(ev.direction)))
      if (typeof ev.publisher === 'string') parts.push(`publisher ${printable(ev.publisher)}`)
      if (typeof ev.reason === 'string') parts.push(`reason ${printable(ev.reason)}`)
      if (Array.isArray(ev.keys) && ev.keys.length) parts.push(`keys ${quotedList(ev.keys)}`)
      if (Array.isArray(ev.prefixes) && ev.prefixes.length) parts.push(`prefixes ${quotedList(ev.prefixes)}`)
      break
    }
    case 'error':
      if (typeof ev.code === 'string') parts.push(printable(ev.code))
      parts.push(oneLine(String(ev.message)))
      break
    case 'circuit':
      parts.push(printable(String(ev.state)))
      break
    default: {
      const { type: _type, at: _at, ...rest } = ev
      parts.push(jsonSafe(JSON.stringify(rest)))
    }
  }
  return parts.join('  ')
}

export function isoTime(at: unknown): string {
  const d = new Date(typeof at === 'number' ? at : Date.now())
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString()
}
