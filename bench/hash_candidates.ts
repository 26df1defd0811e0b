// Pure-JS 32-bit hash candidates for the L1's key hash, measured by bench/hash.ts
// against xxhash-wasm. Every candidate hashes the key's UTF-8 bytes (directly, or by
// walking the string and encoding on the fly), so a key hashes the same whichever
// way a thread holds it (string or bytes). All answer unsigned 32-bit integers.

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/**
 * FNV-1a 32 over the UTF-8 encoding of `s`, computed from charCodeAt without an
 * encode step: ASCII is one byte per char; other code points are encoded inline
 * exactly as TextEncoder does (a lone surrogate becomes U+FFFD, EF BF BD). Equal to
 * `fnv1a32Bytes(utf8 of s)` for every string.
 */
export function fnv1a32String(s: string): number {
  // A tight ASCII loop first (keys are nearly always ASCII); the general loop takes
  // over at the first char >= 0x80. One loop with the surrogate `i++` in it ran
  // 2-4x slower on ASCII keys (V8 optimizes the simple induction variable better).
  let h = FNV_OFFSET
  const n = s.length
  let i = 0
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return fnv1a32Utf8From(s, i, h)
    h = Math.imul(h ^ c, FNV_PRIME)
  }
  return h >>> 0
}

function fnv1a32Utf8From(s: string, from: number, seed: number): number {
  let h = seed
  const n = s.length
  for (let i = from; i < n; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME)
      continue
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >>> 6)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
      continue
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        i++
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        h = Math.imul(h ^ (0xf0 | (cp >>> 18)), FNV_PRIME)
        h = Math.imul(h ^ (0x80 | ((cp >>> 12) & 0x3f)), FNV_PRIME)
        h = Math.imul(h ^ (0x80 | ((cp >>> 6) & 0x3f)), FNV_PRIME)
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME)
        continue
      }
      c = 0xfffd
    }
    h = Math.imul(h ^ (0xe0 | (c >>> 12)), FNV_PRIME)
    h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), FNV_PRIME)
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
  }
  return h >>> 0
}

/** FNV-1a 32 over `bytes[0, len)`. */
export function fnv1a32Bytes(bytes: Uint8Array, len: number = bytes.length): number {
  let h = FNV_OFFSET
  for (let i = 0; i < len; i++) h = Math.imul(h ^ (bytes[i] as number), FNV_PRIME)
  return h >>> 0
}

/** MurmurHash3 x86 32-bit over `bytes[0, len)`. */
// murmur3 is the L1's key hash now: it lives in wasm/hash.ts, measured here from there.
export { murmur3_32 } from '../wasm/hash.js'

const P1 = 0x9e3779b1
const P2 = 0x85ebca77
const P3 = 0xc2b2ae3d
const P4 = 0x27d4eb2f
const P5 = 0x165667b1

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r))

function u32le(b: Uint8Array, i: number): number {
  return (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)
}

/** XXH32 in pure JS over `bytes[0, len)` (equal to xxhash-wasm's h32Raw). Not in the brief; here to
 * separate the algorithm's cost from the wasm call and copy. */
export function xxh32(bytes: Uint8Array, len: number = bytes.length, seed = 0): number {
  let i = 0
  let h: number
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0
    let v2 = (seed + P2) | 0
    let v3 = seed | 0
    let v4 = (seed - P1) | 0
    const limit = len - 16
    for (; i <= limit; i += 16) {
      v1 = Math.imul(rotl((v1 + Math.imul(u32le(bytes, i), P2)) | 0, 13), P1)
      v2 = Math.imul(rotl((v2 + Math.imul(u32le(bytes, i + 4), P2)) | 0, 13), P1)
      v3 = Math.imul(rotl((v3 + Math.imul(u32le(bytes, i + 8), P2)) | 0, 13), P1)
      v4 = Math.imul(rotl((v4 + Math.imul(u32le(bytes, i + 12), P2)) | 0, 13), P1)
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0
  } else {
    h = (seed + P5) | 0
  }
  h = (h + len) | 0
  for (; i + 4 <= len; i += 4) h = Math.imul(rotl((h + Math.imul(u32le(bytes, i), P3)) | 0, 17), P4)
  for (; i < len; i++) h = Math.imul(rotl((h + Math.imul(bytes[i] as number, P5)) | 0, 11), P1)
  h ^= h >>> 15
  h = Math.imul(h, P2)
  h ^= h >>> 13
  h = Math.imul(h, P3)
  h ^= h >>> 16
  return h >>> 0
}

const encoder = new TextEncoder()
let scratch = new Uint8Array(256)

/**
 * Encodes `s` as UTF-8 into a reused scratch buffer (grown when the key could need
 * more than it has) and answers the byte count; read the bytes with scratchBytes()
 * afterwards. They are valid until the next call.
 */
export function utf8Into(s: string): number {
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(s.length * 3)
  return encoder.encodeInto(s, scratch).written
}

/** The scratch buffer utf8Into wrote into. */
export function scratchBytes(): Uint8Array {
  return scratch
}
