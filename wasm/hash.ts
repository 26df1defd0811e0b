import xxhash from 'xxhash-wasm'

/**
 * Hashing glue: xxhash-wasm, one instance per thread (it hashes in its own wasm
 * memory). Call `initHash()` once (createCache does) before `h32`.
 */
type Hasher = Awaited<ReturnType<typeof xxhash>>
let hasher: Hasher | undefined
let loading: Promise<Hasher> | undefined

export async function initHash(): Promise<void> {
  if (hasher) return
  loading ??= xxhash()
  hasher = await loading
}

/** xxh32 of `bytes` (seed 0). */
export function h32(bytes: Uint8Array): number {
  if (!hasher) throw new Error('nearcache: initHash() must complete before hashing')
  return hasher.h32Raw(bytes, 0) >>> 0
}
