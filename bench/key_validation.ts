// What the lone-surrogate check costs on the hot path: validateKey runs on every
// get/set. Times validateKey (with String.prototype.isWellFormed) against the same
// checks without it, on keys as an application builds them: short ASCII
// (`user:123456:profile`, one-byte strings V8 answers from a flag), non-ASCII
// (two-byte strings, scanned), and 200-char ones. Each iteration validates 1000 keys.
// No Redis needed. Alone: node --import tsx bench/key_validation.ts
import { Bench } from 'tinybench'
import { InvalidKeyError } from '../src/errors.js'
import { validateKey } from '../src/keys.js'

/** validateKey as it was before the surrogate check (the baseline). */
function withoutCheck(key: unknown, maxKeyBytes: number): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError('bad')
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key) > maxKeyBytes) throw new InvalidKeyError('long')
  return key
}

const sets: Record<string, string[]> = {
  'ascii 19 chars': Array.from({ length: 1000 }, (_, i) => `user:${100000 + i}:profile`),
  'non-ASCII 19 chars': Array.from({ length: 1000 }, (_, i) => `użytkownik:${10000 + i}:żółw`),
  'ascii 200 chars': Array.from({ length: 1000 }, (_, i) => `${'segment:'.repeat(24)}${10000000 + i}`),
}

const bench = new Bench({ time: 1500, warmupTime: 300 })
let sink = 0
for (const [name, keys] of Object.entries(sets)) {
  bench.add(`validateKey      ${name}`, () => {
    for (const k of keys) sink += validateKey(k, 1024).length
  })
  bench.add(`without the check ${name}`, () => {
    for (const k of keys) sink += withoutCheck(k, 1024).length
  })
}
await bench.run()
const rows = bench.tasks.map((t) => {
  const mean = t.result && 'latency' in t.result ? (t.result as { latency: { mean: number } }).latency.mean : (t.result as unknown as { mean: number }).mean
  return { task: t.name, 'ns per key': Math.round((mean * 1e6) / 1000) }
})
console.table(rows)
if (sink < 0) console.log(sink)
