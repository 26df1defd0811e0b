import type { Redis } from 'ioredis'
import { healthReport } from '../../health/health.js'
import type { HealthReport } from '../../health/health.js'
import type { CacheStats, TierStats } from '../../stats.js'
import { parseDuration } from '../../util/units.js'
import { str } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect, isCluster, masters, nodeAddress } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, UsageError, oneLine } from '../errors.js'
import { note, out, table } from '../output.js'
import { parseInfo } from './status.js'

const DEFAULT_INTERVAL_MS = 2000
const FETCH_TIMEOUT_MS = 5000
const CIRCUIT = ['closed', 'open', 'half-open'] as const

/** One sample of Prometheus text: name, labels, value. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Prometheus text exposition format (comments and blank lines skipped; timestamps ignored). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    }
    const v = m[3] as string
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v)
    samples.push({ name: m[1] as string, labels, value })
  }
  return samples
}

export interface TierFigures {
  tier: string
  hits: number
  misses: number
  /** hits / (hits + misses); null before the first lookup. */
  hitRatio: number | null
  sets: number
  deletes: number
  errors: number
  evictions: number
  entries: number
  bytes: number
  /** ms; null when the metrics have no such quantile. */
  p50: number | null
  p99: number | null
}

export interface ProcessStats {
  source: string
  namespaces: string[]
  circuit: CacheStats['circuit'] | 'unknown'
  tiers: TierFigures[]
  health: HealthReport
}

const COUNTERS = ['hits', 'misses', 'sets', 'deletes', 'errors', 'evictions'] as const

/** The figures of a nearcache process's /metrics, summed over namespaces, per tier. */
export function processStats(samples: Sample[], source: string): ProcessStats {
  const tiers = new Map<string, TierFigures>()
  const namespaces = new Set<string>()
  const tierOf = (s: Sample) => {
    const name = s.labels.tier ?? 'all'
    let t = tiers.get(name)
    if (!t) {
      t = { tier: name, hits: 0, misses: 0, hitRatio: null, sets: 0, deletes: 0, errors: 0, evictions: 0, entries: 0, bytes: 0, p50: null, p99: null }
      tiers.set(name, t)
    }
    return t
  }
  const quantiles = new Map<string, { sum: number; n: number }>()
  let circuit: ProcessStats['circuit'] = 'unknown'
  let found = false
  for (const s of samples) {
    if (!s.name.startsWith('nearcache_')) continue
    found = true
    if (s.labels.namespace !== undefined) namespaces.add(s.labels.namespace)
    const base = s.name.slice('nearcache_'.length)
    const counter = COUNTERS.find((c) => base === `${c}_total`)
    if (counter) tierOf(s)[counter] += s.value
    else if (base === 'entries' || base === 'bytes') tierOf(s)[base] += s.value
    else if (base === 'latency_seconds' && s.labels.quantile !== undefined && Number.isFinite(s.value)) {
      // Several namespaces share one latency window per tier: show the worst.
      const key = `${s.labels.tier ?? 'all'}|${Number(s.labels.quantile)}`
      const q = quantiles.get(key) ?? { sum: 0, n: 0 }
      q.sum = Math.max(q.sum, s.value * 1000)
      q.n++
      quantiles.set(key, q)
      tierOf(s)
    } else if (base === 'circuit_state') {
      if (s.labels.state !== undefined) {
        if (s.value === 1 && (CIRCUIT as readonly string[]).includes(s.labels.state)) circuit = s.labels.state as CacheStats['circuit']
      } else circuit = CIRCUIT[s.value] ?? 'unknown'
    }
  }
  if (!found) throw new CliError(`${source} has no nearcache_* metrics (is it a nearcache process's metrics endpoint?)`)
  for (const t of tiers.values()) {
    t.hitRatio = t.hits + t.misses > 0 ? t.hits / (t.hits + t.misses) : null
    const q = (p: number) => {
      const v = quantiles.get(`${t.tier}|${p}`)
      return v ? Math.round(v.sum * 1000) / 1000 : null
    }
    t.p50 = q(0.5)
    t.p99 = q(0.99)
  }
  const order = (n: string) => (n === 'l1' ? 0 : n === 'l2' ? 1 : 2)
  const list = [...tiers.values()].sort((a, b) => order(a.tier) - order(b.tier) || a.tier.localeCompare(b.tier))
  const asTier = (name: string): TierStats => {
    const t = tiers.get(name)
    return {
      enabled: t !== undefined,
      hits: t?.hits ?? 0,
      misses: t?.misses ?? 0,
      sets: t?.sets ?? 0,
      deletes: t?.deletes ?? 0,
      errors: t?.errors ?? 0,
      evictions: t?.evictions ?? 0,
      entries: t?.entries ?? 0,
      bytes: t?.bytes ?? 0,
      latency: { p50: t?.p50 ?? 0, p99: t?.p99 ?? 0, samples: t?.p99 != null ? 1 : 0 },
    }
  }
  const health = healthReport({ stats: { l1: asTier('l1'), l2: asTier('l2'), circuit: circuit === 'unknown' ? 'closed' : circuit } })
  return { source, namespaces: [...namespaces].sort(), circuit, tiers: list, health }
}

const ratio = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`)
const msText = (v: number | null) => (v === null ? '-' : `${v.toFixed(3)} ms`)

export function formatProcessStats(p: ProcessStats): string {
  const lines = [`Process     ${p.source}`]
  if (p.namespaces.length) lines.push(`Namespaces  ${p.namespaces.join(', ')}`)
  lines.push(`Circuit     ${p.circuit}`)
  const rows = [['TIER', 'HITS', 'MISSES', 'HIT RATIO', 'SETS', 'DELETES', 'ERRORS', 'EVICTIONS', 'ENTRIES', 'BYTES', 'P50', 'P99']]
  for (const t of p.tiers) {
    rows.push([t.tier, ...[t.hits, t.misses].map(String), ratio(t.hitRatio), ...[t.sets, t.deletes, t.errors, t.evictions, t.entries, t.bytes].map(String), msText(t.p50), msText(t.p99)])
  }
  lines.push(table(rows))
  lines.push(`Health      ${p.health.status}${p.health.hitRatio !== undefined ? `, overall hit ratio ${ratio(p.health.hitRatio)} over ${p.health.lookups} lookups` : ''}`)
  for (const r of p.health.recommendations) lines.push(`  - ${r}`)
  return lines.join('\n')
}

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

/** GET of a Prometheus text endpoint. */
export async function fetchMetrics(url: string): Promise<string> {
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'text/plain' } })
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause
    throw new CliError(`cannot read metrics from ${url} (${oneLine(cause ?? err)})`, { cause: err })
  }
  if (!res.ok) throw new CliError(`cannot read metrics from ${url} (HTTP ${res.status} ${res.statusText})`)
  return res.text()
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
  usage: 'stats [--from URL] [--watch] [--interval DURATION] [--json]',
  help: `With --from, reads a running process's Prometheus metrics (serveMetrics) and prints,
per tier, hits, misses, the hit ratio, sets, deletes, errors, evictions, entries,
bytes and latency, summed over namespaces; then a health check with
recommendations when the figures look wrong. Without --from, connects to Redis and
prints each master's INFO figures: keyspace hits and misses (for every client of
the server, not only nearcache), ops/s, keys, expired and evicted keys, memory.

Options:
  --from URL            A process's metrics endpoint, e.g. http://127.0.0.1:9464/metrics
  --watch               Print again every interval until Ctrl-C (with --json: one
                        JSON object per line)
  --interval DURATION   Time between prints with --watch (default 2s)

Examples:
  nearcache stats --from http://127.0.0.1:9464/metrics --watch
  nearcache stats --cluster 127.0.0.1:7000 --json`,
  options: { from: { type: 'string' }, watch: { type: 'boolean' }, interval: { type: 'string' } },
  async run({ globals, values }) {
    const from = str(values.from)
    if (from !== undefined && !/^https?:\/\/\S+$/.test(from)) {
      throw new UsageError(`--from takes an http:// or https:// URL (got ${JSON.stringify(from)})`, 'stats')
    }
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
          const p = processStats(parsePrometheus(await fetchMetrics(from)), from)
          return { json: p, text: formatProcessStats(p) }
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
