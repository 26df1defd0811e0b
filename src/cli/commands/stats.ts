import type { Redis } from 'ioredis'
import { healthReport } from '../../observability/health.js'
import type { HealthReport } from '../../observability/health.js'
import { parsePrometheus, statsFromSamples } from '../../observability/prometheus_parse.js'
import type { CacheStats } from '../../observability/stats.js'
import { parseDuration } from '../../util/units.js'
import { str } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect, isCluster, masters, nodeAddress } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, UsageError, oneLine } from '../errors.js'
import { boundedText, MAX_METRICS_BYTES, metricsToken, requestHeaders, statusHint, TOKEN_HELP } from '../http_fetch.js'
import { note, out, table } from '../output.js'
import { formatCacheStats } from '../stats_format.js'
import { parseInfo } from './status.js'

const DEFAULT_INTERVAL_MS = 2000
const FETCH_TIMEOUT_MS = 5000

export interface ProcessFigures {
  source: string
  namespaces: string[]
  circuit: CacheStats['circuit']
  /** The process's stats, rebuilt from its metrics. */
  stats: CacheStats
  health: HealthReport
}

/** The figures of a nearcache process's /metrics text. */
export function processFigures(text: string, source: string): ProcessFigures {
  const s = statsFromSamples(parsePrometheus(text))
  if (!s) throw new CliError(`${source} has no nearcache_* metrics (is it a nearcache process's metrics endpoint?)`)
  const health = healthReport({ stats: s, ...(s.l1.capacity > 0 ? { l1MaxBytes: s.l1.capacity } : {}) })
  return { source, namespaces: Object.keys(s.namespaces).sort(), circuit: s.circuit, stats: s, health }
}

export function formatProcessFigures(p: ProcessFigures): string {
  return `Process     ${p.source}
${formatCacheStats(p.stats, p.health)}`
}

const ratio = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`)

export interface RedisNodeStats {
  addr: string
  hits: number
  misses: number
  hitRatio: number | null
  evictedKeys: number
  expiredKeys: number
  keys: number
  memory: { used: number; usedHuman: string; max: number; maxHuman: string; policy: string }
  opsPerSec: number
}

export interface RedisStats {
  target: string
  mode: 'standalone' | 'cluster'
  nodes: RedisNodeStats[]
  total: Omit<RedisNodeStats, 'addr' | 'memory'> & { memoryUsed: number }
}

async function nodeStats(node: Redis): Promise<RedisNodeStats> {
  const [stats, memory, dbsize] = await Promise.all([node.info('stats'), node.info('memory'), node.dbsize()])
  const i = new Map([...parseInfo(stats), ...parseInfo(memory)])
  const n = (k: string) => Number(i.get(k) ?? 0)
  const hits = n('keyspace_hits')
  const misses = n('keyspace_misses')
  return {
    addr: nodeAddress(node),
    hits,
    misses,
    hitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
    evictedKeys: n('evicted_keys'),
    expiredKeys: n('expired_keys'),
    keys: dbsize,
    memory: {
      used: n('used_memory'),
      usedHuman: i.get('used_memory_human') ?? '?',
      max: n('maxmemory'),
      maxHuman: i.get('maxmemory_human') ?? '?',
      policy: i.get('maxmemory_policy') ?? '?',
    },
    opsPerSec: n('instantaneous_ops_per_sec'),
  }
}

/** INFO stats and memory of every master (Redis counts hits and misses for all its clients, not only nearcache). */
export async function collectRedisStats(client: Client, label: string): Promise<RedisStats> {
  const nodes = await Promise.all(masters(client).map(nodeStats))
  nodes.sort((a, b) => a.addr.localeCompare(b.addr))
  const sum = (f: (n: RedisNodeStats) => number) => nodes.reduce((s, n) => s + f(n), 0)
  const hits = sum((n) => n.hits)
  const misses = sum((n) => n.misses)
  return {
    target: label,
    mode: isCluster(client) ? 'cluster' : 'standalone',
    nodes,
    total: {
      hits,
      misses,
      hitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
      evictedKeys: sum((n) => n.evictedKeys),
      expiredKeys: sum((n) => n.expiredKeys),
      keys: sum((n) => n.keys),
      memoryUsed: sum((n) => n.memory.used),
      opsPerSec: sum((n) => n.opsPerSec),
    },
  }
}

export function formatRedisStats(r: RedisStats): string {
  const lines = [`Redis       ${r.target} (${r.mode === 'cluster' ? `Redis Cluster, ${r.nodes.length} masters` : 'standalone'})`]
  lines.push('            keyspace hits/misses count every client of the server, not only nearcache')
  const rows = [['NODE', 'HITS', 'MISSES', 'HIT RATIO', 'OPS/S', 'KEYS', 'EXPIRED', 'EVICTED', 'MEMORY', 'MAXMEMORY']]
  for (const n of r.nodes) {
    rows.push([
      n.addr,
      String(n.hits),
      String(n.misses),
      ratio(n.hitRatio),
      String(n.opsPerSec),
      String(n.keys),
      String(n.expiredKeys),
      String(n.evictedKeys),
      n.memory.usedHuman,
      n.memory.max === 0 ? 'none' : `${n.memory.maxHuman} (${n.memory.policy})`,
    ])
  }
  if (r.nodes.length > 1) {
    const t = r.total
    rows.push(['total', String(t.hits), String(t.misses), ratio(t.hitRatio), String(t.opsPerSec), String(t.keys), String(t.expiredKeys), String(t.evictedKeys), `${(t.memoryUsed / 1024 / 1024).toFixed(2)}M`, ''])
  }
  lines.push(table(rows))
  return lines.join('\n')
}

/**
 * GET of a Prometheus text endpoint, with the bearer token when there is one: at
 * most MAX_METRICS_BYTES within FETCH_TIMEOUT_MS, redirects not followed (they
 * would carry the token elsewhere).
 */
export async function fetchMetrics(url: string, token?: string): Promise<string> {
  let res: Response
  const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS)
  try {
    res = await fetch(url, { signal, redirect: 'manual', headers: requestHeaders('text/plain', token) })
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause
    throw new CliError(`cannot read metrics from ${url} (${oneLine(signal.aborted ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : (cause ?? err))})`, { cause: err })
  }
  if (!res.ok) {
    void res.body?.cancel().catch(() => {})
    throw new CliError(`cannot read metrics from ${url} (HTTP ${res.status} ${res.statusText}${statusHint(res.status, token)})`)
  }
  return boundedText(res, MAX_METRICS_BYTES, `the metrics from ${url}`)
}

/** Resolves after `ms`, or at once when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

export const stats: Command = {
  name: 'stats',
  summary: "Hit ratios and figures of a running process, or Redis's own",
  usage: 'stats [--from URL [--token TOKEN]] [--watch] [--interval DURATION] [--json]',
  help: `With --from, reads a running process's Prometheus metrics (serveMetrics) and prints
the L1 fill; per tier, hits, misses, the hit ratio, sets, deletes, errors,
evictions and round-trip p50/p99; per namespace, hits by tier, misses, sets,
deletes, expirations, loader calls, coalesced calls and get p50/p99; the
invalidations sent and received and the write-behind queue; then a health check
with recommendations when the figures look wrong. Without --from, connects to Redis and
prints each master's INFO figures: keyspace hits and misses (for every client of
the server, not only nearcache), ops/s, keys, expired and evicted keys, memory.

Options:
  --from URL            A process's metrics endpoint, e.g. http://127.0.0.1:9464/metrics
                        (at most ${MAX_METRICS_BYTES / 1024 / 1024} MiB read, within ${FETCH_TIMEOUT_MS / 1000} s)
${TOKEN_HELP}
  --watch               Print again every interval until Ctrl-C (with --json: one
                        JSON object per line)
  --interval DURATION   Time between prints with --watch (default 2s)

Examples:
  nearcache stats --from http://127.0.0.1:9464/metrics --watch
  nearcache stats --cluster 127.0.0.1:7000 --json`,
  options: { from: { type: 'string' }, watch: { type: 'boolean' }, interval: { type: 'string' }, token: { type: 'string' } },
  async run({ globals, values }) {
    const from = str(values.from)
    if (from !== undefined && !/^https?:\/\/\S+$/.test(from)) {
      throw new UsageError(`--from takes an http:// or https:// URL (got ${JSON.stringify(from)})`, 'stats')
    }
    const token = metricsToken(values, process.env, 'stats')
    if (token !== undefined && str(values.token) !== undefined && from === undefined) throw new UsageError('--token works with --from only', 'stats')
    const intervalText = str(values.interval)
    if (intervalText !== undefined && values.watch !== true) throw new UsageError('--interval needs --watch', 'stats')
    let interval = DEFAULT_INTERVAL_MS
    if (intervalText !== undefined) {
      try {
        interval = parseDuration(intervalText, 'interval') as number
      } catch {
        throw new UsageError(`--interval takes milliseconds or a duration like 500ms, 2s, 1m (got ${JSON.stringify(intervalText)})`, 'stats')
      }
    }
    const watch = values.watch === true
    let client: Client | undefined
    const stop = new AbortController()
    const onSigint = () => stop.abort()
    if (watch) process.once('SIGINT', onSigint)
    try {
      if (from === undefined) client = await connect(globals.target)
      const label = globals.target.label
      const sample = async (): Promise<{ json: unknown; text: string }> => {
        if (from !== undefined) {
          const p = processFigures(await fetchMetrics(from, token), from)
          return { json: p, text: formatProcessFigures(p) }
        }
        const r = await collectRedisStats(client as Client, label)
        return { json: r, text: formatRedisStats(r) }
      }
      if (!watch) {
        const s = await sample()
        await out(globals.json ? JSON.stringify(s.json, null, 2) : s.text)
        return 0
      }
      note(`stats: every ${interval} ms from ${from ?? label}; Ctrl-C to stop`)
      let first = true
      while (!stop.signal.aborted) {
        const s = await sample()
        if (stop.signal.aborted) break
        if (globals.json) await out(JSON.stringify({ at: new Date().toISOString(), ...(s.json as object) }))
        else {
          await out(`${first ? '' : '\n'}-- ${new Date().toISOString()}\n${s.text}`)
        }
        first = false
        await sleep(interval, stop.signal)
      }
      return 0
    } finally {
      process.off('SIGINT', onSigint)
      await disconnect(client)
    }
  },
}
