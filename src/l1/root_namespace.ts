// Root namespaces of keys and their generation words: the O(1) invalidation of a
// whole namespace. A key's root is the bytes before its first ':' or '|' (tag epoch
// keys '__nc|t|<ns>…' belong to the namespace they name), hashed (FNV-1a) onto one
// of kRootGens words; one more word stands for the whole table. A record keeps the
// generation it was written in (records.recGen) and counts as gone once that is not
// its root's current generation; its space is reclaimed when its ring's tail reaches
// it. A collision between roots only makes an invalidation drop more than it must.
import * as K from './layout.js'

const COLON = 0x3a
const BAR = 0x7c
/** '__nc|t|': tag epoch keys belong to the namespace that follows. */
const TAG_PREFIX = [0x5f, 0x5f, 0x6e, 0x63, 0x7c, 0x74, 0x7c]

function rootStart(b: Uint8Array, len: number): number {
  if (len < TAG_PREFIX.length) return 0
  for (let i = 0; i < TAG_PREFIX.length; i++) if (b[i] !== TAG_PREFIX[i]) return 0
  return TAG_PREFIX.length
}

/** Offset of the ':' or '|' that ends the root namespace, or -1 when the bytes end first. */
export function rootEnd(b: Uint8Array, len: number): number {
  for (let i = rootStart(b, len); i < len; i++) if (b[i] === COLON || b[i] === BAR) return i
  return -1
}

/** The root generation word of a key (or of a prefix that names its root). */
export function rootIndexOf(b: Uint8Array, len: number): number {
  const start = rootStart(b, len)
  let end = rootEnd(b, len)
  if (end < 0) end = len
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193)
  return (h >>> 0) & (K.kRootGens - 1)
}

/**
 * The current generation of a root: its word plus the whole table's (words from
 * `gensBase` in the table's Int32Array). Both words only grow, so the sum changes
 * whenever either does.
 */
export function generation(i32: Int32Array, gensBase: number, root: number): number {
  return (Atomics.load(i32, gensBase + root) + Atomics.load(i32, gensBase + K.kRootGens)) | 0
}

const enc = new TextEncoder()

/**
 * Voids every record of the root namespaces the prefixes fall in: bumps their
 * words, or only the table's word (every root at once) when a prefix's root cannot
 * be told, such as ''.
 */
export function bumpRoots(i32: Int32Array, gensBase: number, prefixes: readonly string[]): void {
  const roots = new Set<number>()
  for (const p of prefixes) {
    const bytes = enc.encode(p)
    roots.add(rootEnd(bytes, bytes.length) < 0 ? K.kRootGens : rootIndexOf(bytes, bytes.length))
  }
  const bump = roots.has(K.kRootGens) ? [K.kRootGens] : roots
  for (const r of bump) Atomics.add(i32, gensBase + r, 1)
}
