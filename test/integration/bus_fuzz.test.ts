import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { initHash } from '../../wasm/hash.js'
import { kMinBytes } from '../../src/l1/layout.js'
import { rootIndexOf, SharedTable } from '../../src/l1/shared_table.js'
import { insideRoot, LEGACY_CHANNEL } from '../../src/keys.js'
import { MAX_KEYS, parseMessage } from '../../src/l2/bus_protocol.js'
import { InvalidationBus, MAX_PUBLISHERS } from '../../src/l2/invalidation_bus.js'
import { BusSigner } from '../../src/l2/bus_signer.js'
import { Keyring } from '../../src/security/keyring.js'
import { uniqueNamespace } from '../helpers/backends.js'

/**
 * Fuzzing the invalidation bus: generated and mutated messages through the
 * schema, and through the subscriber's real message handler over a real table.
 * Every case ends in an applied message or a counted rejection: nothing throws,
 * nothing outside the channel's root namespace is touched, state stays bounded.
 */
const RUNS = 12_000
let root = ''
let otherRoot = ''
const clients: Redis[] = []

beforeAll(async () => {
  await initHash()
  root = uniqueNamespace('fz')
  // A second root on a different generation word, whose entries must survive everything.
  const enc = new TextEncoder()
  const idx = (r: string) => rootIndexOf(enc.encode(`${r}:`), enc.encode(`${r}:`).length)
  for (let i = 0; ; i++) {
    otherRoot = `other${i}`
    if (idx(otherRoot) !== idx(root)) break
  }
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit()))
})

const keyPart = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('', ':', '|', '\ud800', '\udfff', '\u0000', '*', '__nc|t|', '\n'),
)
/** Keys and prefixes: some inside the root, some almost, some in other roots. */
const key = fc.oneof(
  keyPart.map((k) => `${root}:${k}`),
  keyPart.map((k) => `__nc|t|${root}|${k}`),
  keyPart.map((k) => `__nc|t|${root}:${k}`),
  keyPart.map((k) => `${otherRoot}:${k}`),
  keyPart.map((k) => `${root}${k}`),
  keyPart,
)
const validish = fc.record(
  {
    v: fc.oneof(fc.constant(1), fc.constant(1), fc.integer({ min: -2, max: 5 }), fc.constant('1'), fc.double()),
    o: fc.oneof(fc.constant('pub-a'), fc.constant('pub-b'), fc.string({ maxLength: 110 }), fc.integer()),
    s: fc.oneof(fc.nat({ max: 20 }), fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER + 2), fc.string()),
    k: fc.oneof(fc.array(key, { maxLength: 8 }), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.string()),
    p: fc.oneof(fc.array(key, { maxLength: 4 }), fc.jsonValue()),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
)
/**
 * Well-formed messages of this root: without them nearly every generated message
 * is refused by the schema, and the handler's apply path would go untested (a
 * run once applied none of 12,000).
 */
const wellFormed = fc
  .record({
    v: fc.constant(1),
    o: fc.constantFrom('pub-a', 'pub-b', 'pub-c'),
    s: fc.nat({ max: 20 }),
    k: fc.array(fc.string({ minLength: 1, maxLength: 12 }).map((k) => `${root}:${k}`), { minLength: 1, maxLength: 8 }),
    p: fc.array(fc.string({ maxLength: 6 }).map((k) => `${root}:${k}`), { maxLength: 2 }),
  })
  .map((m) => JSON.stringify(m))
/** Byte-level mutations of a message text. */
const mutate = (text: string, at: number, what: number, ch: string): string => {
  const i = at % (text.length + 1)
  if (what === 0) return text.slice(0, i)
  if (what === 1) return text.slice(0, i) + ch + text.slice(i)
  if (what === 2) return text.slice(0, i) + text.slice(i + 1)
  return text
}
const message = fc.oneof(
  { weight: 4, arbitrary: wellFormed },
  { weight: 5, arbitrary: validish.map((m) => JSON.stringify(m)) },
  { weight: 3, arbitrary: fc.tuple(validish, fc.nat(), fc.nat({ max: 3 }), fc.string({ minLength: 1, maxLength: 2 })).map(([m, at, w, ch]) => mutate(JSON.stringify(m), at, w, ch)) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('null', '{}', '[]', '{"k":5}', '{"p":"abc"}', '{"__proto__":{"v":1}}', '{"v":1e400}', 'x'.repeat(600 * 1024)) },
)

describe('bus message schema (fuzz)', () => {
  it(`accepts only messages whose every key and prefix is inside the root (${RUNS} cases, both formats)`, () => {
    fc.assert(
      fc.property(message, fc.boolean(), (text, legacy) => {
        const p = parseMessage(text, root, legacy)
        if (p.kind !== 'ok') return
        for (const k of [...p.message.keys, ...p.message.prefixes]) expect(insideRoot(k, root)).toBe(true)
        expect(p.message.keys.length).toBeLessThanOrEqual(legacy ? Infinity : MAX_KEYS)
        expect(typeof p.message.origin).toBe('string')
        expect(Number.isSafeInteger(p.message.seq)).toBe(true)
      }),
      { numRuns: RUNS },
    )
  })
})

describe('bus message handler (fuzz)', () => {
  it(`never throws, never touches another root, keeps its state bounded (${RUNS} cases)`, async () => {
    // Room enough that the refills below never make the table evict the sentinels.
    const table = SharedTable.create(8 * 1024 * 1024)
    const client = new Redis(inject('redisUrl'))
    clients.push(client)
    const bus = await InvalidationBus.start(client, root, table, { legacyChannel: true, onError: () => {} })
    const handle = (bus as unknown as { onMessage(ch: unknown, text: unknown): void }).onMessage.bind(bus)
    const now = Date.now()
    const sentinel = new Uint8Array([7])
    table.put(`${otherRoot}:keep`, sentinel, 0, now)
    table.put(`__nc|t|${otherRoot}|tag`, sentinel, 0, now)
    let cases = 0
    let applied = 0
    const flushes: string[] = []
    bus.onAnnounce = (n) => {
      if (n.direction === 'received') applied++
      if (n.direction === 'flush') flushes.push(`${n.reason} ${n.prefixes.join(',')} after ${cases}`)
    }
    try {
      fc.assert(
        fc.property(message, fc.boolean(), (text, legacy) => {
          cases++
          // Refill an entry of the root now and then, so applying messages has work to do.
          if (cases % 50 === 0) table.put(`${root}:k`, sentinel, 0, now)
          expect(() => handle(legacy ? LEGACY_CHANNEL : bus.channel, text)).not.toThrow()
          if (table.lookup(`${otherRoot}:keep`, now) === null) throw new Error(`sentinel lost after ${JSON.stringify(text).slice(0, 300)} legacy=${legacy}`)
        }),
        { numRuns: RUNS },
      )
      // Odd channel names and non-string payloads from a misbehaving client library.
      for (const [ch, t] of [[undefined, 'null'], [bus.channel, undefined], [bus.channel, Buffer.from('{}')], [Symbol('x'), {}]] as const) {
        expect(() => handle(ch, t)).not.toThrow()
      }
    } finally {
      await bus.close()
    }
    expect(bus.received + bus.rejected).toBeGreaterThan(0)
    // Over-limit messages of the previous protocol are received but not read (their root is flushed instead).
    expect(applied).toBeLessThanOrEqual(bus.received)
    // About one case in seven is well-formed for its channel (a run applies ~1,600 of 12,000):
    // far fewer means the apply path refuses good messages.
    expect(applied).toBeGreaterThan(cases / 10)
    expect(bus.received + bus.rejected).toBeLessThanOrEqual(cases + 4)
    expect([Buffer.from(table.lookup(`${otherRoot}:keep`, now) ?? []), flushes.filter((f) => !f.includes(root))]).toEqual([Buffer.from(sentinel), []])
    expect(Buffer.from(table.lookup(`__nc|t|${otherRoot}|tag`, now) ?? [])).toEqual(Buffer.from(sentinel))
    const seen = (bus as unknown as { lastSeen: Map<string, Map<string, number>> }).lastSeen
    for (const m of seen.values()) expect(m.size).toBeLessThanOrEqual(MAX_PUBLISHERS)
    expect(table.checkInvariants()).toEqual([])
  })

  it(`with keys: only messages signed by a listed key for this channel are applied (${RUNS} cases)`, async () => {
    const keys = [{ id: 7, key: new Uint8Array(32).fill(7) }, { id: 9, key: new Uint8Array(32).fill(9) }]
    const table = SharedTable.create(8 * 1024 * 1024)
    const client = new Redis(inject('redisUrl'))
    clients.push(client)
    const bus = await InvalidationBus.start(client, root, table, { legacyChannel: false, onError: () => {}, keyring: Keyring.from(keys) })
    const handle = (bus as unknown as { onMessage(ch: unknown, text: unknown): void }).onMessage.bind(bus)
    const ours = [new BusSigner(Keyring.from([keys[0]])), new BusSigner(Keyring.from([keys[1]]))]
    const foreign = new BusSigner(Keyring.from([{ id: 7, key: new Uint8Array(32).fill(1) }]))
    const otherChannel = `__nc|inv|${otherRoot}`
    /** A text, and whether it is exactly what a listed key signed for this channel. */
    const signedMessage = fc.oneof(
      message.map((t) => ({ text: t, genuine: false })),
      fc.tuple(message, fc.nat({ max: 1 })).map(([t, i]) => ({ text: t.endsWith('}') ? (ours[i] as BusSigner).sign(bus.channel, t) : t, genuine: t.endsWith('}') })),
      wellFormed.map((t) => ({ text: foreign.sign(bus.channel, t), genuine: false })),
      wellFormed.map((t) => ({ text: (ours[0] as BusSigner).sign(otherChannel, t), genuine: false })),
      fc.tuple(wellFormed, fc.nat(), fc.nat({ max: 3 }), fc.string({ minLength: 1, maxLength: 2 })).map(([t, at, w, ch]) => {
        const signed = (ours[1] as BusSigner).sign(bus.channel, t)
        const text = mutate(signed, at, w, ch)
        return { text, genuine: text === signed }
      }),
    )
    const now = Date.now()
    const sentinel = new Uint8Array([7])
    table.put(`${otherRoot}:keep`, sentinel, 0, now)
    let applied = 0
    let genuine = 0
    bus.onAnnounce = (n) => {
      if (n.direction === 'received') applied++
    }
    try {
      fc.assert(
        fc.property(signedMessage, (m) => {
          const before = applied
          if (m.genuine) genuine++
          expect(() => handle(bus.channel, m.text)).not.toThrow()
          // Applied only if genuine (a genuine one may still fail the schema).
          if (applied > before && !m.genuine) throw new Error(`applied a message no listed key signed: ${JSON.stringify(m.text).slice(0, 300)}`)
          if (table.lookup(`${otherRoot}:keep`, now) === null) throw new Error('sentinel lost')
        }),
        { numRuns: RUNS },
      )
    } finally {
      await bus.close()
    }
    // A fair share of cases are genuine and well-formed: the apply path was exercised.
    expect(applied).toBeGreaterThan(RUNS / 20)
    expect(applied).toBeLessThanOrEqual(genuine)
    expect(bus.received + bus.rejected).toBeLessThanOrEqual(RUNS)
    expect(table.checkInvariants()).toEqual([])
  })

  it('the same through a real Redis subscription (a sample of 1,000)', async () => {
    const table = SharedTable.create(kMinBytes)
    const client = new Redis(inject('redisUrl'))
    const pub = new Redis(inject('redisUrl'))
    clients.push(client, pub)
    const bus = await InvalidationBus.start(client, root, table, { legacyChannel: false, onError: () => {} })
    const samples = fc.sample(message, { numRuns: 1000, seed: 42 })
    const pipeline = pub.pipeline()
    for (const text of samples) pipeline.publish(bus.channel, text)
    // A valid marker last: once it is handled, every sample before it was.
    pipeline.publish(bus.channel, JSON.stringify({ v: 1, o: 'marker', s: 0, k: [`${root}:marker`] }))
    await pipeline.exec()
    const end = Date.now() + 30_000
    while (!(bus.received + bus.rejected >= samples.length + 1 || Date.now() > end)) await new Promise((r) => setTimeout(r, 20))
    await bus.close()
    expect(bus.received + bus.rejected).toBe(samples.length + 1)
  })
})
