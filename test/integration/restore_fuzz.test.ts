import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { namespacePrefixes } from '../../src/keys.js'
import { checkLine } from '../../src/cli/commands/restore.js'
import { crc64, dumpProblem } from '../../src/cli/dump_payload.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { CLI_TIMEOUT, nearcache, show } from '../helpers/cli_runner.js'

/**
 * Backup lines are hostile input: 10,000 generated and mutated lines through
 * restore's checks, and 1,500 of them through the real `nearcache restore` into
 * the real Redis. Each ends restored or refused with a reason; nothing outside
 * the target namespace and nothing but strings is ever written.
 */

let raw: Redis
let dir: string
const from = uniqueNamespace('fzsrc')
const into = uniqueNamespace('fzdst')
/** Real DUMP payloads: strings of every RDB string encoding, and other types. */
const dumps: Buffer[] = []
beforeAll(async () => {
  raw = new Redis(inject('redisUrl'))
  dir = await mkdtemp(join(tmpdir(), 'nc-restore-fuzz-'))
  const k = `${from}:seed`
  const strings: (string | Buffer)[] = ['', 'v', '12345', '-7', '300000', 'x'.repeat(100), 'y'.repeat(70_000), Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 7919 + (i >> 3)) & 0xff))]
  for (const v of strings) {
    await raw.set(k, v)
    dumps.push((await raw.dumpBuffer(k)) as Buffer)
  }
  await raw.del(k)
  await raw.hset(k, 'f', 'v')
  dumps.push((await raw.dumpBuffer(k)) as Buffer)
  await raw.del(k)
  await raw.rpush(k, 'a', 'b')
  dumps.push((await raw.dumpBuffer(k)) as Buffer)
  await raw.del(k)
  await raw.sadd(k, '1', '2')
  dumps.push((await raw.dumpBuffer(k)) as Buffer)
  await raw.del(k)
  await raw.zadd(k, 1, 'a')
  dumps.push((await raw.dumpBuffer(k)) as Buffer)
  await raw.del(k)
})
afterAll(async () => {
  raw.disconnect()
  await rm(dir, { recursive: true, force: true })
})

/** The payload with its CRC64 recomputed, so the checks behind the CRC are reached. */
function recrc(p: Buffer): Buffer {
  if (p.length < 10) return p
  const q = Buffer.from(p)
  const [hi, lo] = crc64(q.subarray(0, q.length - 8))
  q.writeUInt32LE(lo, q.length - 8)
  q.writeUInt32LE(hi, q.length - 4)
  return q
}

const keyOf = fc.oneof(
  { arbitrary: fc.string({ maxLength: 12 }).map((s) => `${from}:${s}`), weight: 4 },
  fc.string({ maxLength: 12 }).map((s) => `${from}:child:${s}`),
  fc.string({ maxLength: 8 }).map((s) => `__nc|t|${from}|${s}`),
  fc.constantFrom(`${from}`, `${from}x:evil`, `other-${from}:k`, `__nc|t|${from}x|t`, `${into}:direct`, `__nc|inv`, '', `${from}:\u0000\u001b[2J\u202e`, `${from}:\ud800`),
)
const payloadMutation = fc.oneof(
  { arbitrary: fc.constant({ op: 'none' as const }), weight: 4 },
  fc.record({ op: fc.constantFrom('flip' as const, 'flip+crc' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('type' as const), type: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('version' as const), version: fc.constantFrom(0, 1, 9, 10, 11, 12, 33, 65535) }),
  fc.record({ op: fc.constantFrom('truncate' as const, 'append' as const), n: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ op: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
)
const pttl = fc.oneof({ arbitrary: fc.constantFrom(-1, 600_000), weight: 4 }, fc.constantFrom(0, 1, -2, 1.5, 2 ** 47, 2 ** 47 + 1, 2 ** 53, 1e20, '5', null, NaN))
const textMutation = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 6 },
  fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), cut: fc.integer({ min: 0, max: 5 }), insert: fc.constantFrom('', '"', '{', '}', ',', '\\', '\u0000', 'null', '"nearcache_backup":1,') }),
)
const line = fc.record({ key: keyOf, dump: fc.nat(), mutation: payloadMutation, pttl, text: textMutation, extra: fc.boolean() })

type Gen = typeof line extends fc.Arbitrary<infer T> ? T : never

function render(g: Gen): { text: string; key: string } {
  let p: Buffer = Buffer.from(dumps[g.dump % dumps.length] as Buffer)
  const m = g.mutation
  if (m.op === 'flip' || m.op === 'flip+crc') {
    const i = m.at % p.length
    p[i] = (p[i] as number) ^ (1 << m.bit)
    if (m.op === 'flip+crc') p = recrc(p)
  } else if (m.op === 'type') {
    p[0] = m.type
    p = recrc(p)
  } else if (m.op === 'version') {
    p.writeUInt16LE(m.version, p.length - 10)
    p = recrc(p)
  } else if (m.op === 'truncate') p = p.subarray(0, Math.max(0, p.length - m.n))
  else if (m.op === 'append') p = recrc(Buffer.concat([p.subarray(0, p.length - 10), Buffer.alloc(m.n, 0x41), p.subarray(p.length - 10)]))
  else if (m.op === 'random') p = Buffer.from(m.bytes)
  const o: Record<string, unknown> = { k: g.key, v: p.toString('base64'), pttl: g.pttl }
  if (g.extra) o.x = 'extra field'
  let text = JSON.stringify(o)
  if (g.text) {
    const i = Math.floor(g.text.at * text.length)
    text = text.slice(0, i) + g.text.insert + text.slice(i + g.text.cut)
  }
  return { text, key: g.key }
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/
const targetPrefixes = namespacePrefixes(into)

describe('backup lines through restore (fuzz)', () => {
  it('10,000 generated and mutated lines: each is a checked line inside the target namespace, or a reason', () => {
    const seen = { ok: 0, refused: 0 }
    fc.assert(
      fc.property(line, fc.constantFrom(1024, 64 * 1024 * 1024), (g, maxValue) => {
        const { text } = render(g)
        const r = checkLine({ no: 7, text, bytes: text.length + 1 }, from, into, maxValue)
        if (r === undefined) return
        if (typeof r === 'string') {
          seen.refused++
          expect(r.length).toBeLessThan(600)
          expect(r).not.toMatch(CONTROL)
          return
        }
        seen.ok++
        expect(targetPrefixes.some((p) => r.k.startsWith(p)), r.k).toBe(true)
        expect(dumpProblem(r.payload)).toBeUndefined()
        expect(r.payload[0]).toBe(0)
        expect(r.payload.length).toBeLessThanOrEqual(maxValue)
        expect(Number.isSafeInteger(r.pttl) && r.pttl >= -1 && r.pttl <= 2 ** 47).toBe(true)
      }),
      { numRuns: 10_000 },
    )
    expect(seen.ok).toBeGreaterThan(1000)
    expect(seen.refused).toBeGreaterThan(1000)
    // An over-long line is refused by its length alone.
    expect(checkLine({ no: 3, tooLong: 1 << 30 }, from, into, 1024)).toMatch(/^the line is 1073741824 bytes long/)
  })

  it('1,500 of them through the real nearcache restore --into: counts add up; only strings, only inside the target namespace', { timeout: CLI_TIMEOUT }, async () => {
    const gens = fc.sample(line, { numRuns: 1500, seed: 424242 })
    const rendered = gens.map(render)
    const file = join(dir, 'fuzz.jsonl')
    const header = JSON.stringify({ nearcache_backup: 1, namespace: from, created: '2026-12-10T00:00:00.000Z' })
    await writeFile(file, [header, ...rendered.map((r) => r.text)].join('\n'), { mode: 0o600 })
    const r = await nearcache(['restore', '--redis', inject('redisUrl'), '--namespace', from, '--into', into, '--from', file, '--replace', '--json'])
    expect([0, 1], show(r)).toContain(r.code)
    const result = JSON.parse(r.stdout) as { restored: number; skipped: number; invalid: number; failed: number }
    const nonBlank = rendered.filter((x) => x.text.trim() !== '').length
    expect(result.restored + result.skipped + result.invalid + result.failed).toBe(nonBlank)
    expect(result.restored).toBeGreaterThan(100)
    expect(result.invalid).toBeGreaterThan(100)
    expect(result.failed).toBe(0)
    // Nothing landed under the backup's own name, or anywhere but the target namespace.
    const underSource = [...(await raw.keys(`${from}*`)), ...(await raw.keys(`__nc|t|${from}*`))]
    expect(underSource).toEqual([])
    for (const k of [`other-${from}:k`, `${into}:direct`]) expect(await raw.exists(k)).toBe(0)
    const written = [...(await raw.keys(`${into}:*`)), ...(await raw.keys(`__nc|t|${into}|*`))]
    expect(written.length).toBeGreaterThan(0)
    const types = await Promise.all(written.map((k) => raw.type(k)))
    expect(new Set(types)).toEqual(new Set(['string']))
    await raw.del(...written)
  })
})
