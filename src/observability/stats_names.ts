import { withLock } from '../threads/atomics.js'
import { HEADER_WORDS, HeaderWord, MAX_NAMESPACES, NAME_BYTES, NAMES_BASE, NAMES_LOCK_STALE_MS, NAMES_LOCK_TIME_BYTE, OTHER_BLOCK } from './stats_layout.js'

/**
 * The namespace names in the stats buffer, so that every thread agrees on which
 * block is whose. A name is registered once, by the first thread that uses it,
 * and keeps its slot; the table only grows. Names past the table's size, and
 * names too long for a slot, share the last block (OTHER_BLOCK).
 */
export class NameTable {
  private readonly head: Int32Array
  private readonly bytes: Uint8Array
  private readonly lockTime: Float64Array
  /** This thread's copy of the registered names (the table only grows, so a copy only needs extending). */
  private readonly known: string[] = []

  constructor(sab: SharedArrayBuffer) {
    this.head = new Int32Array(sab, 0, HEADER_WORDS)
    this.bytes = new Uint8Array(sab, NAMES_BASE, MAX_NAMESPACES * NAME_BYTES)
    this.lockTime = new Float64Array(sab, NAMES_LOCK_TIME_BYTE, 1)
  }

  /** The registered names, in block order, decoding only the ones this thread has not seen yet. */
  registered(): string[] {
    const count = Math.min(OTHER_BLOCK, Atomics.load(this.head, HeaderWord.NamesCount))
    while (this.known.length < count) this.known.push(this.nameAt(this.known.length))
    return this.known
  }

  /** The block of `name`, registering it on first use by any thread. */
  register(name: string): number {
    const bytes = Buffer.from(name, 'utf8')
    if (bytes.length > NAME_BYTES - 2) return OTHER_BLOCK
    const known = this.registered().indexOf(name)
    if (known >= 0) return known
    // A short critical section: the name table only grows, under a lock. A name is
    // written before the count that makes it visible, so a stolen lock needs no repair.
    return withLock(this.head, HeaderWord.NamesLock, this.lockTime, 0, NAMES_LOCK_STALE_MS, () => {}, () => {
      const again = this.registered().indexOf(name)
      if (again >= 0) return again
      const count = Atomics.load(this.head, HeaderWord.NamesCount)
      if (count >= OTHER_BLOCK) return OTHER_BLOCK
      const at = count * NAME_BYTES
      this.bytes[at] = bytes.length & 0xff
      this.bytes[at + 1] = bytes.length >> 8
      this.bytes.set(bytes, at + 2)
      Atomics.store(this.head, HeaderWord.NamesCount, count + 1)
      return count
    })
  }

  /** The block of the longest registered namespace that prefixes `key` (`<namespace>:...`), else OTHER_BLOCK. */
  blockOfKey(key: string): number {
    const names = this.registered()
    let best = -1
    let bestLen = -1
    for (let i = 0; i < names.length; i++) {
      const n = names[i] as string
      if (n.length > bestLen && key.length > n.length && key.charCodeAt(n.length) === 58 && key.startsWith(n)) {
        best = i
        bestLen = n.length
      }
    }
    // Keys of namespaces past the table's size (and internal keys) go to the overflow block.
    return best >= 0 ? best : OTHER_BLOCK
  }

  private nameAt(i: number): string {
    const at = i * NAME_BYTES
    const len = (this.bytes[at] as number) | ((this.bytes[at + 1] as number) << 8)
    return Buffer.from(this.bytes.slice(at + 2, at + 2 + len)).toString('utf8')
  }
}
