import { CACHE_EVENT_TYPES } from '../../events/event_stream.js'
import type { CacheEventJSON, CacheEventType } from '../../events/event_stream.js'
import { intOption, str, strings } from '../args.js'
import type { GlobalOptions } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, oneLine, UsageError } from '../errors.js'
import { note, out } from '../output.js'

/**
 * The channel and message format of the library's cross-process invalidation bus
 * (src/l2/invalidation_bus.ts, channel set in src/create.ts). Keep in step with it.
 */
export const INVALIDATION_CHANNEL = '__nc|inv'

export interface Announcement {
  /** ISO time the command received it. */
  at: string
  /** The announcing process's bus id (the CLI's own start with 'nearcache-cli-'). */
  publisher: string
  seq: number
  keys: string[]
  prefixes: string[]
}

/** One bus message as an announcement; undefined when it is not one. */
export function parseAnnouncement(text: string, at = new Date()): Announcement | undefined {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof m !== 'object' || m === null) return undefined
  const o = m as { o?: unknown; s?: unknown; k?: unknown; p?: unknown }
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])
  return {
    at: at.toISOString(),
    publisher: typeof o.o === 'string' ? o.o : '?',
    seq: typeof o.s === 'number' ? o.s : -1,
    keys: list(o.k),
    prefixes: list(o.p),
  }
}

/** Whether full internal key `key` belongs to namespace `ns`: one of its data keys (`ns:...`) or tag epochs. */
export function inNamespace(key: string, ns: string): boolean {
  return [`${ns}:`, `__nc|t|${ns}|`, `__nc|t|${ns}:`].some((p) => key.startsWith(p))
}

/** The keys and prefixes that concern namespace `ns`; undefined when none do. */
export function narrowToNamespace(keys: readonly string[], prefixes: readonly string[], ns: string): { keys: string[]; prefixes: string[] } | undefined {
  const owned = [`${ns}:`, `__nc|t|${ns}|`, `__nc|t|${ns}:`]
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
  const parts = [a.at, `publisher ${a.publisher}`, `seq ${a.seq}`]
  if (a.keys.length) parts.push(`keys ${a.keys.map((k) => JSON.stringify(k)).join(' ')}`)
  if (a.prefixes.length) parts.push(`prefixes ${a.prefixes.map((p) => JSON.stringify(p)).join(' ')}`)
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
  const parts = [isoTime(e.at), e.type]
  const quoted = (v: unknown) => (Array.isArray(v) ? v.map((x) => JSON.stringify(String(x))).join(' ') : '')
  const ev = e as Record<string, unknown>
  switch (e.type) {
    case 'eviction':
      parts.push(`key ${JSON.stringify(String(ev.key))}`)
      break
    case 'invalidation': {
      parts.push(String(ev.direction))
      if (typeof ev.publisher === 'string') parts.push(`publisher ${ev.publisher}`)
      if (typeof ev.reason === 'string') parts.push(`reason ${ev.reason}`)
      if (Array.isArray(ev.keys) && ev.keys.length) parts.push(`keys ${quoted(ev.keys)}`)
      if (Array.isArray(ev.prefixes) && ev.prefixes.length) parts.push(`prefixes ${quoted(ev.prefixes)}`)
      break
    }
    case 'error':
      if (typeof ev.code === 'string') parts.push(ev.code)
      parts.push(oneLine(String(ev.message)))
      break
    case 'circuit':
      parts.push(String(ev.state))
      break
    default: {
      const { type: _type, at: _at, ...rest } = ev
      parts.push(JSON.stringify(rest))
    }
  }
  return parts.join('  ')
}

function isoTime(at: unknown): string {
  const d = new Date(typeof at === 'number' ? at : Date.now())
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString()
}

const CONNECT_TIMEOUT_MS = 10_000
/** What serveMetrics's /events answers with (EVENTS_CONTENT_TYPE in src/metrics/http_endpoint.ts). */
const EVENTS_CONTENT_TYPE = 'application/x-ndjson'

/**
 * Follows a process's /events stream: prints each event (after the namespace
 * filter) until `count` events, Ctrl-C (exit 0) or the stream's end (a failure:
 * the process went away). One-line CliErrors when the URL cannot be reached or
 * is not a nearcache events endpoint.
 */
async function tailHttp(url: string, globals: GlobalOptions, ns: string | undefined, count: number): Promise<number> {
  const ac = new AbortController()
  let interrupted = false
  const onSigint = () => {
    interrupted = true
    ac.abort()
  }
  process.once('SIGINT', onSigint)
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS)
  try {
    let res: Response
    try {
      res = await fetch(url, { signal: ac.signal, headers: { accept: EVENTS_CONTENT_TYPE } })
    } catch (err) {
      if (interrupted) return 0
      const reason = ac.signal.aborted && ac.signal.reason instanceof Error ? ac.signal.reason : ((err as { cause?: unknown }).cause ?? err)
      throw new CliError(`cannot read events from ${url} (${oneLine(reason)})`, { cause: err })
    } finally {
      clearTimeout(timer)
    }
    if (!res.ok) {
      void res.body?.cancel().catch(() => {})
      const hint = res.status === 404 ? '; is it a serveMetrics endpoint of a cache with events?' : ''
      throw new CliError(`cannot read events from ${url} (HTTP ${res.status} ${res.statusText}${hint})`)
    }
    const type = res.headers.get('content-type') ?? ''
    if (type.split(';')[0]!.trim().toLowerCase() !== EVENTS_CONTENT_TYPE || !res.body) {
      void res.body?.cancel().catch(() => {})
      throw new CliError(`${url} is not a nearcache events endpoint (Content-Type ${JSON.stringify(type)}, expected ${EVENTS_CONTENT_TYPE})`)
    }
    note(`events: listening to ${url}${ns !== undefined ? ` for namespace '${ns}'` : ''}; Ctrl-C to stop`)
    const decoder = new TextDecoder()
    let rest = ''
    let seen = 0
    let lineNo = 0
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(chunk, { stream: true })
        let nl: number
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl).trim()
          rest = rest.slice(nl + 1)
          lineNo++
          if (line === '') continue
          let e: ServedEvent | undefined = parseServedEvent(line)
          if (!e) throw new CliError(`${url} is not a nearcache events endpoint (line ${lineNo} is not an event: ${JSON.stringify(line.slice(0, 80))})`)
          if (ns !== undefined) e = eventForNamespace(e, ns)
          if (!e) continue
          seen++
          await out(globals.json ? JSON.stringify({ ...e, at: isoTime(e.at) }) : formatEvent(e))
          if (seen >= count) return 0
        }
      }
    } catch (err) {
      if (interrupted) return 0
      if (err instanceof CliError) throw err
      throw new CliError(`lost the event stream from ${url} (${oneLine((err as { cause?: unknown }).cause ?? err)})`, { cause: err })
    }
    if (interrupted) return 0
    throw new CliError(`the event stream from ${url} ended (the process stopped serving it)`)
  } finally {
    process.off('SIGINT', onSigint)
    // Closes the connection when we stop reading (count reached, or a failure).
    ac.abort()
  }
}

function parseServedEvent(line: string): ServedEvent | undefined {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const e = v as { type?: unknown; at?: unknown }
  return typeof e.type === 'string' && typeof e.at === 'number' ? (v as ServedEvent) : undefined
}

const SUBCOMMANDS = ['tail']

export const events: Command = {
  name: 'events',
  summary: 'Follow the invalidation announcements on Redis, or one process\'s events',
  usage: 'events tail [--from URL [--type TYPES]] [--count N] [--namespace NS] [--json]',
  help: `events tail subscribes to the invalidation bus (Redis pub/sub channel '${INVALIDATION_CHANNEL}')
and prints every announcement running nearcache processes make: the keys they
wrote or deleted and the prefixes they invalidated, with the publisher's id and
sequence number; one line each (one JSON object per line with --json), until
Ctrl-C or --count announcements. With --namespace, only announcements that
concern that namespace, narrowed to its keys and prefixes.

With --from, it follows one process's own events instead, from the /events
endpoint of its serveMetrics server: L1 evictions (the key), invalidations
(sent, received from another process, or a full L1 flush after a disconnect or
a lost message), errors and circuit breaker changes. One line each: time, type,
then what happened (--json: one object per line, as the process serves it, with
an ISO time). --namespace keeps evictions of its keys and invalidations
narrowed to its keys and prefixes; errors and circuit changes always pass.

Options:
  --from URL       A process's serveMetrics URL: http://HOST:PORT or
                   http://HOST:PORT/events (its /metrics URL works too)
  --type TYPES     With --from: only these event types, comma-separated
                   (${CACHE_EVENT_TYPES.join(', ')}; default all)
  --count N        Stop after N announcements (events with --from)
  --namespace NS   Only what concerns namespace NS (default: all)

Examples:
  nearcache events tail --namespace shop --count 10
  nearcache events tail --from http://127.0.0.1:9464 --type eviction,invalidation --namespace shop`,
  options: { count: { type: 'string' }, from: { type: 'string' }, type: { type: 'string', multiple: true } },
  subcommands: SUBCOMMANDS,
  async run({ globals, values, subcommand }) {
    if (subcommand === undefined) throw new UsageError(`events needs a subcommand: ${SUBCOMMANDS.join(', ')}`, 'events')
    if (!SUBCOMMANDS.includes(subcommand)) throw new UsageError(`unknown events subcommand '${subcommand}' (known: ${SUBCOMMANDS.join(', ')})`, 'events')
    const count = intOption(values.count, 'count', Infinity, 1, Number.MAX_SAFE_INTEGER, 'events')
    const ns = globals.namespaceGiven ? globals.namespace : undefined
    const from = str(values.from)
    const typeValues = strings(values.type)
    if (from === undefined && typeValues.length > 0) throw new UsageError('--type works with --from only (Redis carries only invalidation announcements)', 'events')
    if (from !== undefined) {
      if (str(values.redis) !== undefined || str(values.cluster) !== undefined) throw new UsageError('give either --from or --redis/--cluster, not both', 'events')
      return tailHttp(eventsUrl(from, parseTypes(typeValues)), globals, ns, count)
    }
    return tailRedis(globals, ns, count)
  },
}

/** Follows the invalidation bus on Redis. */
async function tailRedis(globals: GlobalOptions, ns: string | undefined, count: number): Promise<number> {
  let client: Client | undefined
  try {
    client = await connect(globals.target)
    const sub = client
    let seen = 0
    let writing: Promise<void> = Promise.resolve()
    const code = await new Promise<number>((resolve, reject) => {
      const finish = (c: number) => {
        process.off('SIGINT', onSigint)
        sub.off('message', onMessage)
        sub.off('end', onEnd)
        resolve(c)
      }
      const onSigint = () => finish(0)
      const onEnd = () => {
        process.off('SIGINT', onSigint)
        reject(new CliError(`lost the connection to ${globals.target.label}`))
      }
      const onMessage = (channel: string, text: string) => {
        if (channel !== INVALIDATION_CHANNEL || seen >= count) return
        let a = parseAnnouncement(text)
        if (a && ns !== undefined) a = forNamespace(a, ns)
        if (!a) return
        seen++
        const line = globals.json ? JSON.stringify(a) : formatAnnouncement(a)
        writing = writing.then(() => out(line))
        if (seen >= count) finish(0)
      }
      process.once('SIGINT', onSigint)
      sub.on('message', onMessage)
      sub.on('end', onEnd)
      sub.subscribe(INVALIDATION_CHANNEL).then(
        () => note(`events: listening on '${INVALIDATION_CHANNEL}' at ${globals.target.label}${ns !== undefined ? ` for namespace '${ns}'` : ''}; Ctrl-C to stop`),
        (err: unknown) => {
          process.off('SIGINT', onSigint)
          reject(err)
        },
      )
    })
    await writing
    return code
  } finally {
    await disconnect(client)
  }
}
