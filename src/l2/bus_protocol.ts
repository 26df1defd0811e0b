import { insideRoot } from '../keys.js'

/**
 * The wire format of the invalidation bus, in one place: its channels, its
 * messages, their limits, and the validation every received message passes
 * before anything in it is used. Everything here treats its input as hostile:
 * any process that can PUBLISH on the Redis can send anything.
 *
 * Channels (their names: src/keys.ts). One per root namespace, `__nc|inv|<root>`,
 * where the root is the first segment of the namespace path (`shop` for `shop`
 * and `shop:users`), so Redis channel ACLs can keep applications apart. Before version 1 every
 * process used one global channel, `__nc|inv`; `invalidation.legacyChannel`
 * keeps publishing and listening there during a rolling upgrade.
 *
 * Messages (JSON), version 1: `{ "v": 1, "o": origin, "s": seq, "k"?: keys, "p"?: prefixes }`.
 * - `o`: the publisher's id, 1–100 of `[A-Za-z0-9_.:-]`;
 * - `s`: its sequence number on this channel, a safe integer ≥ 0 (a gap means
 *   a lost message);
 * - `k`: at most MAX_KEYS full internal keys, `p`: at most MAX_PREFIXES prefixes,
 *   each well-formed UTF-16, and every one inside the channel's root namespace:
 *   `<root>:…` for data, `__nc|t|<root>|…` or `__nc|t|<root>:…` for tag epochs;
 * - `a`: the signature (bus_signer.ts), always the last field, present when the
 *   sender has `encryption` keys. Receivers with keys verify and strip it before
 *   this validation (which then refuses an `a` in the signed text); receivers
 *   without keys read signed messages and ignore it;
 * - no other fields; the whole text at most MAX_MESSAGE_CHARS.
 * A message with `v` above PROTOCOL_VERSION is from a newer nearcache: its
 * content is not read, the receiver drops its root's L1 copies instead.
 *
 * Legacy messages (the global channel) are `{ o, s, k?, p? }` for any namespace:
 * keys and prefixes of other roots are ignored, not refused. Old senders do not
 * split large batches, so a legacy message over the limits is not refused: it is
 * not read either, the receiver drops its root's L1 copies instead (`overflow`).
 */
export const PROTOCOL_VERSION = 1
/** Why `invalidation.legacyChannel` and `encryption` exclude each other (also an option cross-check). */
export const LEGACY_UNSIGNED =
  'invalidation.legacyChannel cannot be combined with encryption: messages of the pre-1.0 format carry no signature, so listening to them would let anyone who can PUBLISH bypass the signature check. Upgrade every process, then turn legacyChannel off.'

/** Longest message text accepted (characters); senders stay well under it. */
export const MAX_MESSAGE_CHARS = 256 * 1024
/** Most keys in one message; senders split larger batches. */
export const MAX_KEYS = 1000
/** Most prefixes in one message. */
export const MAX_PREFIXES = 64
/** Longest key or prefix accepted in a message (characters). */
export const MAX_KEY_CHARS = 64 * 1024
/** Senders start a new message before the text passes this many characters. */
const SEND_CHARS = 128 * 1024
const ORIGIN = /^[A-Za-z0-9_.:-]{1,100}$/

export interface BusMessage {
  origin: string
  seq: number
  keys: string[]
  prefixes: string[]
}

export type Parsed =
  | { kind: 'ok'; message: BusMessage }
  /** From a newer nearcache (protocol `version`): not read; drop the root's L1 copies. */
  | { kind: 'newer'; version: number }
  /** A legacy message over the limits: not read; drop the root's L1 copies. */
  | { kind: 'overflow' }
  /** Refused: `why` describes the fault without quoting the message. */
  | { kind: 'bad'; why: string }

const FIELDS_V1 = new Set(['v', 'o', 's', 'k', 'p'])
const FIELDS_V1_SIGNED = new Set([...FIELDS_V1, 'a'])
const FIELDS_LEGACY = new Set(['o', 's', 'k', 'p'])

/**
 * Validates one received message against the schema of its channel. Never throws.
 * `verified`: the text is what a signature covered (its `a` field already split
 * off), so an `a` field is refused; otherwise a signature field is ignored.
 */
export function parseMessage(text: unknown, root: string, legacy: boolean, verified = false): Parsed {
  if (typeof text !== 'string') return bad('the message is not text')
  if (text.length > MAX_MESSAGE_CHARS) return legacy ? { kind: 'overflow' } : bad(`the message is ${text.length} characters long, over ${MAX_MESSAGE_CHARS}`)
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    return bad('the message is not JSON')
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return bad('the message is not a JSON object')
  const o = m as Record<string, unknown>
  if (!legacy) {
    const v = o.v
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) return bad('the message has no valid protocol version (v)')
    if (v > PROTOCOL_VERSION) return { kind: 'newer', version: v }
  }
  const fields = legacy ? FIELDS_LEGACY : verified ? FIELDS_V1 : FIELDS_V1_SIGNED
  for (const f of Object.keys(o)) if (!fields.has(f)) return bad(`the message has an unknown field (${Object.keys(o).length} fields)`)
  if (o.a !== undefined && typeof o.a !== 'string') return bad('the signature (a) is not text')
  if (typeof o.o !== 'string' || !ORIGIN.test(o.o)) return bad('the publisher id (o) is missing or malformed')
  if (typeof o.s !== 'number' || !Number.isSafeInteger(o.s) || o.s < 0) return bad('the sequence number (s) is not a non-negative integer')
  if (legacy && ((Array.isArray(o.k) && o.k.length > MAX_KEYS) || (Array.isArray(o.p) && o.p.length > MAX_PREFIXES))) return { kind: 'overflow' }
  const keys = strings(o.k, MAX_KEYS, 'keys (k)')
  if (typeof keys === 'string') return bad(keys)
  const prefixes = strings(o.p, MAX_PREFIXES, 'prefixes (p)')
  if (typeof prefixes === 'string') return bad(prefixes)
  if (keys.length === 0 && prefixes.length === 0) return bad('the message names no keys and no prefixes')
  if (legacy) return { kind: 'ok', message: { origin: o.o, seq: o.s, keys: keys.filter((k) => insideRoot(k, root)), prefixes: prefixes.filter((p) => insideRoot(p, root)) } }
  for (let i = 0; i < keys.length; i++) if (!insideRoot(keys[i] as string, root)) return bad(`key ${i} is outside namespace '${root}'`)
  for (let i = 0; i < prefixes.length; i++) if (!insideRoot(prefixes[i] as string, root)) return bad(`prefix ${i} is outside namespace '${root}'`)
  return { kind: 'ok', message: { origin: o.o, seq: o.s, keys, prefixes } }
}

/** No lone UTF-16 surrogates (they would all encode to U+FFFD and collide). */
function wellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed()
}

function bad(why: string): Parsed {
  return { kind: 'bad', why }
}

/** An optional array of well-formed, non-empty strings of bounded length; a string answer is the fault. */
function strings(x: unknown, max: number, what: string): string[] | string {
  if (x === undefined) return []
  if (!Array.isArray(x)) return `${what} is not an array`
  if (x.length > max) return `${what} has ${x.length} entries, over ${max}`
  for (let i = 0; i < x.length; i++) {
    const s = x[i]
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_KEY_CHARS || !wellFormed(s)) return `${what} entry ${i} is not a well-formed string of 1 to ${MAX_KEY_CHARS} characters`
  }
  return x as string[]
}

/**
 * The texts announcing `keys` and `prefixes` on a channel: split so that each
 * stays under the receivers' limits, each with the next sequence number. A key
 * too long for any message is announced as its root's prefix instead (receivers
 * drop the whole root's L1 copies: more than needed, never less).
 */
export function encodeMessages(origin: string, nextSeq: () => number, keys: readonly string[], prefixes: readonly string[], root: string, legacy: boolean): string[] {
  const texts: string[] = []
  const head = (): string => (legacy ? `{"o":${JSON.stringify(origin)},"s":${nextSeq()}` : `{"v":${PROTOCOL_VERSION},"o":${JSON.stringify(origin)},"s":${nextSeq()}`)
  const fits = (s: string) => s.length <= MAX_KEY_CHARS && JSON.stringify(s).length <= SEND_CHARS
  const sendable = keys.filter(fits)
  const allPrefixes = new Set(prefixes.map((p) => (fits(p) ? p : `${root}:`)))
  if (sendable.length < keys.length) allPrefixes.add(`${root}:`)
  let k: string[] = []
  let p: string[] = []
  let chars = 0
  const emit = () => {
    if (k.length + p.length === 0) return
    texts.push(`${head()}${k.length ? `,"k":[${k.join(',')}]` : ''}${p.length ? `,"p":[${p.join(',')}]` : ''}}`)
    k = []
    p = []
    chars = 0
  }
  const add = (item: string, into: 'k' | 'p') => {
    const json = JSON.stringify(item)
    const list = into === 'k' ? k : p
    if (list.length >= (into === 'k' ? MAX_KEYS : MAX_PREFIXES) || chars + json.length + 1 > SEND_CHARS) emit()
    ;(into === 'k' ? k : p).push(json)
    chars += json.length + 1
  }
  for (const prefix of allPrefixes) add(prefix, 'p')
  for (const key of sendable) add(key, 'k')
  emit()
  return texts
}
