import { intOption } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, UsageError } from '../errors.js'
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

/** The announcement's keys and prefixes that concern namespace `ns` (its data keys and tag epochs); undefined when none do. */
export function forNamespace(a: Announcement, ns: string): Announcement | undefined {
  const owned = [`${ns}:`, `__nc|t|${ns}|`, `__nc|t|${ns}:`]
  const mine = (k: string) => owned.some((p) => k.startsWith(p))
  // A prefix concerns the namespace when it covers part of it, or all of it ('', 'sh' for 'shop:').
  const covers = (p: string) => mine(p) || owned.some((o) => o.startsWith(p))
  const keys = a.keys.filter(mine)
  const prefixes = a.prefixes.filter(covers)
  return keys.length + prefixes.length > 0 ? { ...a, keys, prefixes } : undefined
}

export function formatAnnouncement(a: Announcement): string {
  const parts = [a.at, `publisher ${a.publisher}`, `seq ${a.seq}`]
  if (a.keys.length) parts.push(`keys ${a.keys.map((k) => JSON.stringify(k)).join(' ')}`)
  if (a.prefixes.length) parts.push(`prefixes ${a.prefixes.map((p) => JSON.stringify(p)).join(' ')}`)
  return parts.join('  ')
}

const SUBCOMMANDS = ['tail']

export const events: Command = {
  name: 'events',
  summary: 'Follow the invalidation announcements processes make on Redis',
  usage: 'events tail [--count N] [--namespace NS] [--json]',
  help: `events tail subscribes to the invalidation bus (Redis pub/sub channel '${INVALIDATION_CHANNEL}')
and prints every announcement running nearcache processes make: the keys they
wrote or deleted and the prefixes they invalidated, with the publisher's id and
sequence number; one line each (one JSON object per line with --json), until
Ctrl-C or --count announcements. With --namespace, only announcements that
concern that namespace, narrowed to its keys and prefixes. A process's 'error'
and 'circuit' events stay inside it (see eventStream in the library).

Options:
  --count N        Stop after N announcements
  --namespace NS   Only announcements about namespace NS (default: all)

Example:
  nearcache events tail --namespace shop --count 10`,
  options: { count: { type: 'string' } },
  subcommands: SUBCOMMANDS,
  async run({ globals, values, subcommand }) {
    if (subcommand === undefined) throw new UsageError(`events needs a subcommand: ${SUBCOMMANDS.join(', ')}`, 'events')
    if (!SUBCOMMANDS.includes(subcommand)) throw new UsageError(`unknown events subcommand '${subcommand}' (known: ${SUBCOMMANDS.join(', ')})`, 'events')
    const count = intOption(values.count, 'count', Infinity, 1, Number.MAX_SAFE_INTEGER, 'events')
    const ns = globals.namespaceGiven ? globals.namespace : undefined
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
  },
}
