import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache, renderPrometheus } from '../../src/index.js'
import type { CacheStats, HistogramSnapshot } from '../../src/index.js'
import { HISTOGRAM_BOUNDS_MS } from '../../src/observability/stats.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { getFreePort } from '../helpers/free_port.js'
import { CLI_TIMEOUT, nearcache, show, start, until } from '../helpers/cli_runner.js'

/**
 * `nearcache stats`, `events tail` and `bench`, run as a user runs them: a child
 * process (`node --import tsx src/cli/main.ts ...`), checked by stdout, stderr and
 * exit code, against the harness's real Redis and a tiny local metrics server.
 */

/** What a process with two namespaces would serve: fixed figures, rendered by the library's own exporter. */
function fixedStats(): CacheStats {
  const bounds = HISTOGRAM_BOUNDS_MS
  const hist = (at: [number, number][]): HistogramSnapshot => {
    const counts = new Array<number>(bounds.length + 1).fill(0)
    let sumMs = 0
    for (const [i, n] of at) {
      counts[i] = n
      sumMs += n * (bounds[i] ?? 1000)
    }
    return { bounds, counts, count: counts.reduce((a, b) => a + b, 0), sumMs }
  }
  const tier = { deletes: 7, entries: 0, bytes: 0, capacity: 0, latency: { p50: 0, p99: 0, samples: 0 } }
  const ns = (h1: number, h2: number, m2: number, sets: number, evictions: number) => ({
    hits: { l1: h1, l2: h2 }, misses: { l1: 0, l2: m2 }, sets, deletes: 0, expirations: 3, errors: 0, loads: m2, coalesced: 1,
    invalidations: { tags: 0, prefixes: 0 }, evictions, latency: { l1: hist([[1, 16 * 10]]), l2: hist([[6, 20]]) },
  })
  return {
    // L1 lookups within 0–5 µs and 5–10 µs (p50 3.75 µs, p99 9.85 µs); L2: 98 round trips of 0.25–0.5 ms and 2 of 50–100 ms.
    l1: { ...tier, enabled: true, hits: 1000, misses: 200, sets: 400, errors: 0, evictions: 300, entries: 150, bytes: 50_000, capacity: 200_000, histogram: hist([[0, 800], [1, 400]]) },
    l2: { ...tier, enabled: true, hits: 40, misses: 160, sets: 160, errors: 2, evictions: 0, histogram: hist([[6, 98], [13, 2]]) },
    circuit: 'closed',
    namespaces: { shop: ns(900, 30, 20, 300, 250), blog: ns(100, 10, 140, 100, 50) },
    // 500 values of ~195 KiB that LZ4 shrank by only 5%.
    process: { invalidationsSent: 12, invalidationsReceived: 34, invalidationsRejected: 3, l1Flushes: 0, writeBehindDepth: 0, valuesWritten: 500, valueBytes: 500 * 200_000, storedBytes: 500 * 190_000, walCorruptions: 1, deadLetters: 2, deadLetterBytes: 300, auditDropped: 0 },
  }
}
const METRICS = renderPrometheus(fixedStats())

describe('nearcache stats', { timeout: CLI_TIMEOUT, concurrent: true }, () => {
  let server: Server
  let url: string
  let scrapes = 0
  let raw: Redis

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found')
        return
      }
      scrapes++
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(METRICS)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
    raw = new Redis(inject('redisUrl'))
  })
  afterAll(async () => {
    await new Promise((r) => server.close(r))
    await raw.quit()
  })

  it('without --from: the Redis server\'s keyspace hits and misses, keys and memory; --json', async () => {
    const ns = uniqueNamespace('stats')
    await raw.set(`${ns}:a`, '1')
    await raw.get(`${ns}:a`)
    await raw.get(`${ns}:missing`)
    const r = await nearcache(['stats', '--redis', inject('redisUrl')])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain(`Redis       ${inject('redisUrl')} (standalone)`)
    expect(r.stdout).toMatch(/NODE\s+HITS\s+MISSES\s+HIT RATIO\s+OPS\/S\s+KEYS\s+EXPIRED\s+EVICTED\s+MEMORY\s+MAXMEMORY/)
    const row = r.stdout.split('\n').find((l) => /^\s+127\.0\.0\.1:\d+\s/.test(l))
    expect(row, show(r)).toBeDefined()
    const cells = row!.trim().split(/\s+/)
    expect(Number(cells[1])).toBeGreaterThanOrEqual(1)
    expect(Number(cells[2])).toBeGreaterThanOrEqual(1)
    expect(cells[3]).toMatch(/^\d+\.\d%$/)

    const j = await nearcache(['stats', '--redis', inject('redisUrl'), '--json'])
    expect(j.code, show(j)).toBe(0)
    const report = JSON.parse(j.stdout) as { mode: string; nodes: { hits: number; misses: number; keys: number; hitRatio: number; memory: { used: number } }[] }
    expect(report.mode).toBe('standalone')
    expect(report.nodes).toHaveLength(1)
    const n = report.nodes[0]!
    expect(n.hits).toBeGreaterThanOrEqual(Number(cells[1]))
    expect(n.keys).toBeGreaterThanOrEqual(1)
    expect(n.hitRatio).toBeCloseTo(n.hits / (n.hits + n.misses))
    expect(n.memory.used).toBeGreaterThan(0)
  })

  it('on a Cluster: one row per master and a total', async () => {
    const seeds = inject('clusterNodes').map((n) => `${n.host}:${n.port}`).join(',')
    const r = await nearcache(['stats', '--cluster', seeds])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(/Redis Cluster, 3 masters/)
    expect(r.stdout.split('\n').filter((l) => /^\s+127\.0\.0\.1:\d+\s/.test(l))).toHaveLength(3)
    expect(r.stdout).toMatch(/^\s+total\s+\d+/m)
  })

  it('--from: the L1 fill, a table per tier and per namespace with the hit ratios computed, and the health check', async () => {
    const r = await nearcache(['stats', '--from', url])
    expect(r.code, show(r)).toBe(0)
    expect(r.stderr).toBe('')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toBe(`Process     ${url}`)
    expect(r.stdout).toContain('Circuit     closed')
    expect(r.stdout).toContain('L1          150 entries, 50000 bytes of 200000 (25.0%)')
    const cells = (first: string) => lines.find((l) => l.trim().startsWith(`${first} `))!.trim().split(/\s{2,}/)
    // TIER HITS MISSES HIT-RATIO SETS DELETES ERRORS EVICTIONS P50 P99 (quantiles estimated from the histograms)
    expect(cells('l1')).toEqual(['l1', '1000', '200', '83.3%', '400', '7', '0', '300', '3.8 µs', '9.9 µs'])
    expect(cells('l2')).toEqual(['l2', '40', '160', '20.0%', '160', '7', '2', '0', '377.6 µs', '75.00 ms'])
    // NAMESPACE L1-HITS L2-HITS MISSES HIT-RATIO SETS DELETES EXPIRED EVICTED LOADS COALESCED LOOKUP-P50 LOOKUP-P99
    expect(cells('shop')).toEqual(['shop', '900', '30', '20', '97.9%', '300', '0', '3', '250', '20', '1', '7.8 µs', '477.5 µs'])
    expect(cells('blog')).toEqual(['blog', '100', '10', '140', '44.0%', '100', '0', '3', '50', '140', '1', '7.8 µs', '477.5 µs'])
    expect(r.stdout).toContain('Invalidations sent 12, received 34, rejected 3, L1 flushes 0')
    expect(r.stdout).toContain('Write-behind  0 queued, 2 dead letters (300 bytes), 1 damaged log records')
    expect(r.stdout).toContain('Values      500 written, 195.3 KiB on average encoded, stored at 95.0% of that')
    // 1040 hits in 1200 application lookups; L1 evicts 75% of its sets; L2 p99 over 50 ms.
    expect(r.stdout).toContain('Health      degraded, overall hit ratio 86.7% over 1200 lookups')
    expect(r.stdout).toMatch(/L1 is thrashing: 300 evictions for 400 sets/)
    expect(r.stdout).toMatch(/L2 p99 latency is 75 ms/)
    expect(r.stdout).toMatch(/Values average 195\.3 KiB and compress poorly \(stored 95\.0% of their size\)/)
    expect(r.stdout).not.toMatch(/Hit ratio is/)

    const j = await nearcache(['stats', '--from', url, '--json'])
    expect(j.code, show(j)).toBe(0)
    const p = JSON.parse(j.stdout) as { circuit: string; namespaces: string[]; stats: CacheStats; health: { status: string; recommendations: string[]; l1: { fill: number } } }
    expect(p.circuit).toBe('closed')
    expect(p.namespaces).toEqual(['blog', 'shop'])
    const want = fixedStats()
    expect(p.stats.namespaces).toEqual(want.namespaces)
    expect(p.stats.l1).toMatchObject({ hits: 1000, misses: 200, sets: 400, evictions: 300, entries: 150, bytes: 50_000, capacity: 200_000 })
    expect(p.stats.l2).toMatchObject({ hits: 40, misses: 160, errors: 2, histogram: want.l2.histogram })
    expect(p.stats.process).toEqual(want.process)
    expect(p.health.status).toBe('degraded')
    expect(p.health.l1.fill).toBeCloseTo(0.25)
    expect(p.health.recommendations).toHaveLength(3)
  })

  it('--from a dead endpoint or a non-metrics page: exit 1, one line; a bad URL: exit 2', async () => {
    const deadUrl = `http://127.0.0.1:${await getFreePort()}/metrics`
    const dead = await nearcache(['stats', '--from', deadUrl])
    expect(dead.code, show(dead)).toBe(1)
    expect(dead.stderr.trim().split('\n')).toEqual([`nearcache: cannot read metrics from ${deadUrl} (connect ECONNREFUSED ${deadUrl.slice(7, -8)})`])
    const notFound = await nearcache(['stats', '--from', url.replace('/metrics', '/nope')])
    expect(notFound.code, show(notFound)).toBe(1)
    expect(notFound.stderr).toMatch(/HTTP 404/)
    const bad = await nearcache(['stats', '--from', 'ftp://x'])
    expect(bad.code, show(bad)).toBe(2)
    expect(bad.stderr).toMatch(/--from takes an http/)
    const interval = await nearcache(['stats', '--watch', '--interval', 'soon', '--from', url])
    expect(interval.code, show(interval)).toBe(2)
    expect(interval.stderr).toMatch(/--interval takes/)
  })

  it('--watch reprints every interval until SIGINT, then exits 0', async () => {
    const before = scrapes
    const run = start(['stats', '--from', url, '--watch', '--interval', '200ms'])
    await until(() => (run.output().stdout.match(/^Process /gm) ?? []).length >= 3, 20_000, 'three prints')
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    expect(r.stderr).toMatch(/stats: every 200 ms from http/)
    expect((r.stdout.match(/^-- \d{4}-\d\d-\d\dT/gm) ?? []).length).toBeGreaterThanOrEqual(3)
    expect(scrapes - before).toBeGreaterThanOrEqual(3)
  })

  it('--watch --json: one JSON object per line', async () => {
    const run = start(['stats', '--redis', inject('redisUrl'), '--watch', '--interval', '100ms', '--json'])
    await until(() => run.output().stdout.split('\n').filter(Boolean).length >= 2, 20_000, 'two JSON lines')
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    const objs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { at: string; nodes: unknown[] })
    expect(objs.length).toBeGreaterThanOrEqual(2)
    for (const o of objs) expect(o.nodes).toHaveLength(1)
  })
})

describe('nearcache events tail', { timeout: CLI_TIMEOUT }, () => {
  it('--count 2 prints the two announcements a cache makes for set and delete, then exits 0', async () => {
    const ns = uniqueNamespace('tail')
    const run = start(['events', 'tail', '--redis', inject('redisUrl'), '--namespace', ns, '--count', '2'])
    await until(() => run.output().stderr.includes('listening'), 20_000, 'the subscription')
    const cache = await createCache({ redis: inject('redisUrl'), namespace: ns })
    try {
      await cache.set('product:1', { name: 'lamp' })
      await cache.delete('product:1')
      const r = await run.done
      expect(r.code, show(r)).toBe(0)
      const lines = r.stdout.trim().split('\n')
      expect(lines, show(r)).toHaveLength(2)
      for (const l of lines) expect(l).toMatch(new RegExp(`publisher \\S+  seq \\d+  keys "${ns}:product:1"$`))
      const seqs = lines.map((l) => Number(/seq (\d+)/.exec(l)![1]))
      expect(seqs[1]).toBe(seqs[0]! + 1)
    } finally {
      await cache.close()
    }
  })

  it('--json, prefixes, and announcements of other namespaces left out', async () => {
    const ns = uniqueNamespace('tail')
    const other = uniqueNamespace('tail')
    const run = start(['events', 'tail', '--redis', inject('redisUrl'), '--namespace', ns, '--count', '2', '--json'])
    await until(() => run.output().stderr.includes('listening'), 20_000, 'the subscription')
    const mine = await createCache({ redis: inject('redisUrl'), namespace: ns, l1: false })
    const theirs = await createCache({ redis: inject('redisUrl'), namespace: other, l1: false })
    try {
      await theirs.set('x', 1)
      await mine.set('a', 1)
      await mine.invalidatePrefix('user:')
      const r = await run.done
      expect(r.code, show(r)).toBe(0)
      const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { publisher: string; keys: string[]; prefixes: string[]; at: string })
      expect(got.map((g) => [g.keys, g.prefixes])).toEqual([
        [[`${ns}:a`], []],
        [[], [`${ns}:user:`]],
      ])
      expect(got[0]!.publisher).toBe(got[1]!.publisher)
    } finally {
      await mine.close()
      await theirs.close()
    }
  })

  it("follows the namespace's root channel, and prints messages that fail validation as 'rejected' without their content", async () => {
    const root = uniqueNamespace('tail')
    const run = start(['events', 'tail', '--redis', inject('redisUrl'), '--namespace', `${root}:users`, '--count', '2'])
    await until(() => run.output().stderr.includes('listening'), 20_000, 'the subscription')
    expect(run.output().stderr).toContain(`'__nc|inv|${root}'`)
    const raw = new Redis(inject('redisUrl'))
    try {
      await raw.publish(`__nc|inv|${root}`, '{"k":["\u001b[31mred"]}')
      await raw.publish(`__nc|inv|${root}`, JSON.stringify({ v: 1, o: 'p1', s: 0, k: [`${root}:users:1`, `${root}:orders:1`] }))
      const r = await run.done
      expect(r.code, show(r)).toBe(0)
      const lines = r.stdout.trim().split('\n')
      expect(lines[0]).toMatch(/  rejected  the message is not JSON$/)
      expect(lines[1]).toMatch(new RegExp(`publisher p1  seq 0  keys "${root}:users:1"$`))
      expect(r.stdout).not.toContain('\u001b')
    } finally {
      raw.disconnect()
    }
  })

  it('SIGINT stops it with exit 0; no subcommand or an unknown one: exit 2', async () => {
    const run = start(['events', 'tail', '--redis', inject('redisUrl')])
    await until(() => run.output().stderr.includes('listening'), 20_000, 'the subscription')
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    const none = await nearcache(['events', '--redis', inject('redisUrl')])
    expect(none.code, show(none)).toBe(2)
    expect(none.stderr).toMatch(/events needs a subcommand: tail\nusage: nearcache events tail/)
    const unknown = await nearcache(['events', 'head'])
    expect(unknown.code, show(unknown)).toBe(2)
    expect(unknown.stderr).toMatch(/unknown events subcommand 'head'/)
  })
})

describe('nearcache help for the new commands', { timeout: CLI_TIMEOUT, concurrent: true }, () => {
  it.each(['stats', 'events', 'bench'])('%s --help: exit 0, usage and global options on stdout', async (c) => {
    const r = await nearcache([c, '--help'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^Usage: nearcache ${c}`))
    expect(r.stdout).toContain('--namespace')
    expect(r.stderr).toBe('')
  })

  it('bench --help says where the suite lives; events tail --help works too', async () => {
    const r = await nearcache(['bench', '--help'])
    expect(r.stdout).toMatch(/ships with the source\s+repository/)
    const t = await nearcache(['events', 'tail', '--help'])
    expect(t.code, show(t)).toBe(0)
    expect(t.stdout).toMatch(/^Usage: nearcache events tail/)
  })
})
