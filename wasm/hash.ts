import xxhash from 'xxhash-wasm'

/**
 * Hashing glue.
 *
 * - The L1 index hashes keys (UTF-8 bytes, usually 8–64 of them) with murmur3 in
 *   plain TypeScript: bench/hash.ts measured it 1.8x faster than xxhash-wasm's
 *   h32Raw on the same bytes (the wasm call and copy cost more than the hash), with
 *   an even spread over sequential keys. Every thread computes the same value.
 * - Envelope checksums use xxhash-wasm (xxh32), one instance per thread (it hashes
 *   in its own wasm memory). Call `initHash()` once (createCache does) before `h32`.
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

/** murmur3 (32-bit) of `bytes[0, len)`: the L1's key hash. */
export function murmur3_32(bytes: Uint8Array, len: number = bytes.length, seed = 0): number {
  const c1 = 0xcc9e2d51
  const c2 = 0x1b873593
  let h = seed | 0
  const blocks = len & ~3
  let i = 0
  for (; i < blocks; i += 4) {
    let k = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24)
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, c2)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  const tail = len & 3
  if (tail !== 0) {
    let k = 0
    if (tail === 3) k ^= (bytes[i + 2] as number) << 16
    if (tail >= 2) k ^= (bytes[i + 1] as number) << 8
    k ^= bytes[i] as number
    k = Math.imul(k, c1)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, c2)
  }
  h ^= len
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

