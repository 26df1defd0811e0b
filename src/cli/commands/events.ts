import { CACHE_EVENT_TYPES } from '../../observability/event_stream.js'
import { intOption, str, strings } from '../args.js'
import type { GlobalOptions } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, oneLine, UsageError } from '../errors.js'
import { jsonSafe, note, out, printable } from '../output.js'
import { channelFor, LEGACY_CHANNEL, rootNamespace } from '../../keys.js'
import { boundedLines } from '../bounded_lines.js'
import { eventForNamespace, eventsUrl, formatAnnouncement, formatEvent, forNamespace, isoTime, parseAnnouncement, parseTypes } from '../event_format.js'
import type { ServedEvent } from '../event_format.js'

export { formatAnnouncement, formatEvent, parseAnnouncement } from '../event_format.js'
export type { Announcement, ServedEvent } from '../event_format.js'
import { MAX_EVENT_LINE_BYTES, metricsToken, requestHeaders, statusHint, TOKEN_ENV } from '../http_fetch.js'

const CONNECT_TIMEOUT_MS = 10_000
/** What serveMetrics's /events answers with (EVENTS_CONTENT_TYPE in src/observability/http_endpoint.ts). */
const EVENTS_CONTENT_TYPE = 'application/x-ndjson'

/**
 * Follows a process's /events stream: prints each event (after the namespace
 * filter) until `count` events, Ctrl-C (exit 0) or the stream's end (a failure:
 * the process went away). One-line CliErrors when the URL cannot be reached or
 * is not a nearcache events endpoint.
 */
async function tailHttp(url: string, globals: GlobalOptions, ns: string | undefined, count: number, token: string | undefined): Promise<number> {
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
      // Redirects are not followed: they would carry the token elsewhere.
      res = await fetch(url, { signal: ac.signal, redirect: 'manual', headers: requestHeaders(EVENTS_CONTENT_TYPE, token) })
    } catch (err) {
      if (interrupted) return 0
      const reason = ac.signal.aborted && ac.signal.reason instanceof Error ? ac.signal.reason : ((err as { cause?: unknown }).cause ?? err)
      throw new CliError(`cannot read events from ${url} (${oneLine(reason)})`, { cause: err })
    } finally {
      clearTimeout(timer)
    }
    if (!res.ok) {
      void res.body?.cancel().catch(() => {})
      const hint = res.status === 404 ? '; is it a serveMetrics endpoint of a cache with events?' : statusHint(res.status, token)
      throw new CliError(`cannot read events from ${url} (HTTP ${res.status} ${res.statusText}${hint})`)
    }
    const type = res.headers.get('content-type') ?? ''
    if (type.split(';')[0]!.trim().toLowerCase() !== EVENTS_CONTENT_TYPE || !res.body) {
      void res.body?.cancel().catch(() => {})
      throw new CliError(`${url} is not a nearcache events endpoint (Content-Type ${JSON.stringify(type)}, expected ${EVENTS_CONTENT_TYPE})`)
    }
    note(`events: listening to ${url}${ns !== undefined ? ` for namespace '${ns}'` : ''}; Ctrl-C to stop`)
    let seen = 0
    try {
      // Lines are bounded: a peer cannot make us buffer an endless line.
      for await (const l of boundedLines(res.body as unknown as AsyncIterable<Uint8Array>, MAX_EVENT_LINE_BYTES, `the event stream from ${url}`, { unterminated: false })) {
        if (!('text' in l)) continue
        const line = l.text.trim()
        if (line === '') continue
        let e: ServedEvent | undefined = parseServedEvent(line)
        if (!e) throw new CliError(`${url} is not a nearcache events endpoint (line ${l.no} is not an event: ${JSON.stringify(line.slice(0, 80))})`)
        if (ns !== undefined) e = eventForNamespace(e, ns)
        if (!e) continue
        seen++
        await out(globals.json ? jsonSafe(JSON.stringify({ ...e, at: isoTime(e.at) })) : formatEvent(e))
        if (seen >= count) return 0
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
  usage: 'events tail [--from URL [--type TYPES]] [--token TOKEN] [--count N] [--namespace NS] [--legacy] [--json]',
  help: `events tail subscribes to the invalidation bus of the namespace's root
(Redis pub/sub channel '${channelFor('<root>')}', root 'shop' for --namespace shop:users)
and prints every announcement running nearcache processes make: the keys they
wrote or deleted and the prefixes they invalidated, with the publisher's id and
sequence number; one line each (one JSON object per line with --json), until
Ctrl-C or --count announcements. With --namespace, only announcements that
concern that namespace, narrowed to its keys and prefixes. A message that
fails the library's validation prints as 'rejected' with the reason (never its
content).

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
  --token TOKEN    With --from: the endpoint's bearer token (serveMetrics's
                   token); default $${TOKEN_ENV}, which keeps it out of ps
  --count N        Stop after N announcements (events with --from)
  --namespace NS   The channel of NS's root, and only what concerns NS (default
                   'nc'; with --from: all namespaces unless given)
  --legacy         Also follow the global channel '${LEGACY_CHANNEL}' of nearcache
                   before protocol 1 (processes with invalidation.legacyChannel)

Examples:
  nearcache events tail --namespace shop --count 10
  nearcache events tail --from http://127.0.0.1:9464 --type eviction,invalidation --namespace shop`,
  options: { count: { type: 'string' }, from: { type: 'string' }, type: { type: 'string', multiple: true }, token: { type: 'string' }, legacy: { type: 'boolean' } },
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
      return tailHttp(eventsUrl(from, parseTypes(typeValues)), globals, ns, count, metricsToken(values, process.env, 'events'))
    }
    return tailRedis(globals, ns, count, values.legacy === true)
  },
}

/** Follows the invalidation bus on Redis. */
async function tailRedis(globals: GlobalOptions, ns: string | undefined, count: number, legacy: boolean): Promise<number> {
  const root = rootNamespace(globals.namespace)
  const channel = channelFor(globals.namespace)
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
      const onMessage = (ch: string, text: string) => {
        if ((ch !== channel && !(legacy && ch === LEGACY_CHANNEL)) || seen >= count) return
        const parsed = parseAnnouncement(text, root, ch === LEGACY_CHANNEL)
        let line: string
        if ('rejected' in parsed) {
          line = globals.json ? jsonSafe(JSON.stringify({ at: new Date().toISOString(), rejected: parsed.rejected })) : `${new Date().toISOString()}  rejected  ${printable(parsed.rejected)}`
        } else {
          const a = ns !== undefined ? forNamespace(parsed, ns) : parsed
          if (!a) return
          line = globals.json ? jsonSafe(JSON.stringify(a)) : formatAnnouncement(a)
        }
        seen++
        writing = writing.then(() => out(line))
        if (seen >= count) finish(0)
      }
      process.once('SIGINT', onSigint)
      sub.on('message', onMessage)
      sub.on('end', onEnd)
      const channels = legacy ? [channel, LEGACY_CHANNEL] : [channel]
      sub.subscribe(...channels).then(
        () => note(`events: listening on ${channels.map((c) => `'${c}'`).join(' and ')} at ${globals.target.label}${ns !== undefined ? ` for namespace '${ns}'` : ''}; Ctrl-C to stop`),
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
