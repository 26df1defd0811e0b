import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BadMessageError } from '../../src/errors.js'
import { parsePrometheus, statsFromSamples, MAX_METRICS_LINE } from '../../src/observability/prometheus_parse.js'
import { renderPrometheus } from '../../src/observability/prometheus.js'
import { emptyNamespaceStats, emptyStats, HISTOGRAM_BOUNDS_MS } from '../../src/observability/stats.js'
import type { CacheStats } from '../../src/observability/stats.js'
import { CliError } from '../../src/cli/errors.js'
import { formatProcessFigures, processFigures } from '../../src/cli/commands/stats.js'
import { startWorker } from '../helpers/thread_client.js'

/**
 * Metrics text is hostile input (`nearcache stats --from` reads whatever the URL
 * serves): every text ends in figures, "no nearcache metrics", or a typed error,
 * in work linear in its length, without touching Object.prototype.
 */

function exporterText(): string[] {
  const filled = emptyStats()
  filled.l1.enabled = true
  filled.l1.hits = 12
  filled.l1.histogram = { bounds: HISTOGRAM_BOUNDS_MS, counts: HISTOGRAM_BOUNDS_MS.map((_, i) => i).concat([3]), count: 0, sumMs: 4.5 }
  filled.l1.histogram.count = filled.l1.histogram.counts.reduce((a, b) => a + b, 0)
  for (const name of ['shop', 'we\\ird "ns"\nline', 'a:b:c']) {
    const n = emptyNamespaceStats()
    n.sets = 7
    n.hits.l1 = 3
    n.latency.l1 = { ...filled.l1.histogram }
    filled.namespaces[name] = n
  }
  return [renderPrometheus(emptyStats()), renderPrometheus(filled)]
}
const BASES = exporterText()

/** What `stats --from` does with the text: the figures and their printout, or a typed refusal. */
function outcome(text: string): 'stats' | 'none' | 'refused' {
  try {
    const figures = processFigures(text, 'http://fuzz/metrics')
    formatProcessFigures(figures)
    JSON.stringify(figures)
    return 'stats'
  } catch (err) {
    if (err instanceof CliError && /has no nearcache_\* metrics/.test(err.message)) return 'none'
    if (err instanceof BadMessageError) {
      expect(err.code).toBe('E_BAD_MESSAGE')
      expect(err.message.length).toBeLessThan(300)
      return 'refused'
    }
    throw err
  }
}

const TOKENS = [
  'NaN', '+Inf', '-Inf', 'Inf', '1e308', '1e309', '-0', '0x10', '1_000', '', ' ', '\t', '{', '}', '"', '\\', '\\"', '\\n', ',', '=',
  '__proto__', 'constructor', 'prototype', 'toString', 'nearcache_', 'nearcache___proto__', 'namespace="__proto__"', 'tier="l1"',
  'le="+Inf"', 'le="abc"', 'namespace="x",namespace="y"', '\r', '\n', '\u0000', '\u202e', '\ud800', '# TYPE', '9'.repeat(400),
]

const mutation = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  op: fc.constantFrom('insert', 'delete', 'replace', 'dupline', 'truncate'),
  token: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })),
  len: fc.integer({ min: 1, max: 40 }),
})

function mutate(text: string, ms: { at: number; op: string; token: string; len: number }[]): string {
  let t = text
  for (const m of ms) {
    const i = Math.floor(m.at * t.length)
    if (m.op === 'insert') t = t.slice(0, i) + m.token + t.slice(i)
    else if (m.op === 'delete') t = t.slice(0, i) + t.slice(i + m.len)
    else if (m.op === 'replace') t = t.slice(0, i) + m.token + t.slice(i + m.token.length)
    else if (m.op === 'truncate') t = t.slice(0, i)
    else {
      const start = t.lastIndexOf('\n', i) + 1
      const end = t.indexOf('\n', i)
      const line = t.slice(start, end < 0 ? t.length : end)
      t = `${t.slice(0, start)}${line}\n${line}${t.slice(end < 0 ? t.length : end)}`
    }
  }
  return t
}

const name = fc.oneof(
  fc.constantFrom('nearcache_hits_total', 'nearcache_sets_total', 'nearcache_l1_entries', 'nearcache_circuit_state', 'nearcache_tier_hits_total',
    'nearcache_lookup_duration_seconds_bucket', 'nearcache_tier_latency_seconds_sum', 'nearcache_invalidation_messages_total', 'nearcache___proto__',
    'nearcache_constructor', 'nearcache_toString', 'other_metric', ':colon', '0bad'),
  fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,20}$/),
)
const labelValue = fc.oneof(fc.constantFrom('l1', 'l2', '__proto__', 'constructor', '+Inf', '0.001', 'sent', 'rejected', 'a\\"b', 'x\\n', '\\q'), fc.string({ maxLength: 12 }))
const labels = fc.array(fc.tuple(fc.constantFrom('namespace', 'tier', 'le', 'direction', 'kind', 'form', '__proto__', 'constructor', 'x'), labelValue), { maxLength: 4 })
const value = fc.oneof(fc.constantFrom('NaN', '+Inf', '-Inf', '1e309', '-1', '0', '3.5', '1e-400', 'abc', '', '1 1700000000000', '1 x'), fc.double().map(String), fc.integer().map(String))
const sampleLine = fc.tuple(name, labels, value).map(([n, ls, v]) => `${n}${ls.length ? `{${ls.map(([k, x]) => `${k}="${x}"`).join(',')}}` : ''} ${v}`)

describe('metrics text through the stats --from parser (fuzz)', () => {
  it('12,000 generated and mutated texts each end in figures, none, or E_BAD_MESSAGE; Object.prototype untouched', () => {
    const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort()
    const counts = { stats: 0, none: 0, refused: 0 }
    fc.assert(
      fc.property(fc.nat(BASES.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), (b, ms) => {
        counts[outcome(mutate(BASES[b] as string, ms))]++
      }),
      { numRuns: 5000 },
    )
    fc.assert(
      fc.property(fc.array(fc.oneof(sampleLine, fc.constantFrom('# HELP x y', '', '#', '   ')), { maxLength: 30 }), (lines) => {
        counts[outcome(lines.join('\n'))]++
      }),
      { numRuns: 5000 },
    )
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200, unit: 'binary' }), fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a).toString('latin1'))), (t) => {
        counts[outcome(t)]++
      }),
      { numRuns: 2000 },
    )
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore)
    // Every kind of ending was reached: the generators are not all refused (or all accepted).
    // (Unseeded: a run gives ~1,000 of each of the first two; the bounds leave room for chance.)
    expect(counts.stats).toBeGreaterThan(500)
    expect(counts.refused).toBeGreaterThan(500)
    expect(counts.none).toBeGreaterThan(50)
  })

  // Regression cases (each crashed, polluted or hung the old parser).
  it("a metric named nearcache___proto__ is ignored, not called (was: TypeError 'is not a function')", () => {
    expect(outcome('nearcache___proto__{namespace="x"} 1\nnearcache_sets_total{namespace="y"} 2\n')).toBe('stats')
  })

  it("a namespace named '__proto__' or 'constructor' is a namespace like any other (was: Object.prototype.sets written)", () => {
    const s = statsFromSamples(parsePrometheus('nearcache_sets_total{namespace="__proto__"} 5\nnearcache_hits_total{namespace="constructor",tier="l1"} 3\n')) as CacheStats
    expect(({} as { sets?: unknown }).sets).toBeUndefined()
    expect(Object.keys(s.namespaces).sort()).toEqual(['__proto__', 'constructor'])
    expect(s.namespaces['__proto__']?.sets).toBe(5)
    expect(s.namespaces['constructor']?.hits.l1).toBe(3)
    expect(Object.getPrototypeOf(s.namespaces)).toBe(Object.prototype)
  })

  it('malformed sample lines are E_BAD_MESSAGE naming the line (was: skipped or half-read)', () => {
    const cases: [string, RegExp][] = [
      ['nearcache_l1_entries 1\nnearcache_l1_bytes{a="b} 1\n', /line 2 has an unterminated value for label a/],
      ['nearcache_l1_entries one\n', /line 1 has a value that is not a number/],
      ['x{a="1",a="2"} 1\n', /line 1 repeats label a/],
      ['x{a="\\q"} 1\n', /bad escape/],
      ['x 1 2 3\n', /text after the value/],
      ['{a="b"} 1\n', /does not start with a metric name/],
    ]
    for (const [text, why] of cases) expect(() => parsePrometheus(text)).toThrow(why)
    expect(() => parsePrometheus('x 1\n')).not.toThrow()
    expect(parsePrometheus('x{} NaN 1700000000000\ny +Inf\n').map((s) => s.value)).toEqual([NaN, Infinity])
  })

  it('a line of 1 MiB (labels of one long name) is refused at once, not parsed in quadratic time (was: a hang)', async () => {
    const text = `nearcache_l1_entries 1\nx{${'a'.repeat(1024 * 1024)}} 1\n`
    // Old parser: a regex backtracking over every start position, ~5e11 steps. In a
    // thread, so that a parse that never ends fails the test instead of hanging it.
    const w = await startWorker('parse_metrics_worker.ts', text)
    try {
      const answer = await new Promise<{ outcome: string; code?: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the parse did not finish within 20 s')), 20_000)
        w.on('message', (m: { outcome?: string; code?: string }) => {
          if (m.outcome) {
            clearTimeout(timer)
            resolve(m as { outcome: string; code?: string })
          }
        })
      })
      expect(answer).toEqual({ outcome: 'error', code: 'E_BAD_MESSAGE', name: 'BadMessageError' })
    } finally {
      await w.terminate()
    }
    // Under the bound, the same shape is linear: a clear error about the label.
    expect(() => parsePrometheus(`x{${'a'.repeat(MAX_METRICS_LINE - 10)}} 1`)).toThrow(/line 1 has no '=' after label a{40}\.\.\./)
  }, 40_000)
})
