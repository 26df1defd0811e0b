// Data shared by the benchmark suites: the ~150-byte object value and a seeded PRNG,
// so every suite (and every run) works on the same inputs.

/** A ~150-byte (encoded) object value: the value of entry `i` in the get suites. */
export function item(i: number) {
  return {
    id: i,
    sku: `SKU-${String(i).padStart(8, '0')}`,
    name: `Benchmark item number ${i}`,
    price: 1999 + (i % 500),
    tags: ['alpha', 'beta', 'gamma'],
    stock: i % 97,
    updatedAt: '2024-01-01T00:00:00.000Z',
    active: i % 2 === 0,
  }
}

/** mulberry32: a small, fast, seeded PRNG answering floats in [0, 1). Deterministic per seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
