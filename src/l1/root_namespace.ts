// Root namespaces of keys: the bytes before the first ':' or '|' (tag epoch keys
// '__nc|t|<ns>…' belong to the namespace they name). Each root has a generation
// word in the shared table (see SharedTable.invalidateRoots).
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
