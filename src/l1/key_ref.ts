// Keys as the table sees them: UTF-8 bytes, a murmur3 hash and the two buckets the
// hash chooses, computed once and passed explicitly to every method that needs them.
import { murmur3_32 } from '../../wasm/hash.js'
import { firstBucket, secondBucket } from './index_probe.js'
import * as K from './layout.js'
import type { Layout } from './layout.js'
import { rootIndexOf } from './root_namespace.js'

/**
 * A key prepared for one table by `SharedTable.ref()`: encoded and hashed once,
 * its shard and first bucket chosen. Every key method of the table takes one in
 * place of the string, so a caller that looks a key up, reads its epoch and then
 * fills it pays for the encoding and hash once. Valid only with the table that
 * made it. Its key never changes; `second` and `root` are filled in on first use.
 */
export class KeyRef {
  /** @internal Use SharedTable.ref(). */
  constructor(
    /** The key. */
    readonly key: string,
    /** Its UTF-8 bytes are bytes[0, len) (a ref made by ref() holds exactly them). */
    readonly bytes: Uint8Array,
    readonly len: number,
    /** murmur3 of the bytes: chooses the shard (top bits), buckets and epoch word. */
    readonly hash: number,
    /** hash | 1: the tag of the key's slot and record (never 0, the empty slot's). */
    readonly tag: number,
    readonly shard: number,
    /** Index of the first slot of the key's first bucket. */
    readonly first: number,
    /** @internal Of its second bucket (secondOf): -1 when a shard has one bucket, -2 until asked. */
    public second: number,
    /** @internal The root generation word (rootOf), -1 until asked. */
    public root: number,
    /** @internal The coder (one per table) that made the ref. */
    readonly owner: KeyCoder,
  ) {}
}

/** The key's root generation word (see root_namespace), computed on first use. */
export function rootOf(k: KeyRef): number {
  if (k.root < 0) k.root = rootIndexOf(k.bytes, k.len)
  return k.root
}

/** The first slot of the key's second bucket, -1 when a shard has one bucket; computed on first use (most lookups stop at the first bucket). */
export function secondOf(k: KeyRef): number {
  if (k.second === -2) k.second = k.owner.secondBase(k.hash, k.shard)
  return k.second
}

type Writable<T> = { -readonly [P in keyof T]: T[P] }

/** Makes KeyRefs for one table layout. */
export class KeyCoder {
  private readonly enc = new TextEncoder()
  private buf = new Uint8Array(1024)
  private readonly shardShift: number
  private readonly buckets: number
  /**
   * One reusable ref for the table's methods that hold a string key only while
   * running no code from outside the table (lookup, epochOf, take): nothing can
   * reuse it while one of them is using it. Methods that call out while they hold
   * their key (put and update, through onEvict or update's callback) make a ref
   * of their own.
   */
  private readonly shared: Writable<KeyRef>

  constructor(layout: Layout) {
    this.shardShift = 32 - Math.log2(layout.nShards)
    this.buckets = layout.buckets
    this.shared = new KeyRef('', new Uint8Array(1024), 0, 0, 1, 0, 0, -2, -1, this)
  }

  /** A new ref of its own for `key`, complete. */
  make(key: string): KeyRef {
    if (key.length * 3 > this.buf.length) this.buf = new Uint8Array(key.length * 3)
    const len = this.enc.encodeInto(key, this.buf).written as number
    const bytes = this.buf.slice(0, len)
    const h = murmur3_32(bytes, len) | 0
    const shard = h >>> this.shardShift
    return new KeyRef(key, bytes, len, h, h | 1, shard, this.firstBase(h, shard), this.secondBase(h, shard), rootIndexOf(bytes, len), this)
  }

  /** The shared ref, now holding `key` (see `shared`: for methods that call no outside code only). */
  scratch(key: string): KeyRef {
    const k = this.shared
    if (key.length * 3 > k.bytes.length) k.bytes = new Uint8Array(key.length * 3)
    const len = this.enc.encodeInto(key, k.bytes).written as number
    const h = murmur3_32(k.bytes, len) | 0
    k.key = key
    k.len = len
    k.hash = h
    k.tag = h | 1
    k.shard = h >>> this.shardShift
    k.first = this.firstBase(h, k.shard)
    k.second = -2
    k.root = -1
    return k
  }

  /** The first slot of the key's first bucket (index_probe.firstBucket). */
  private firstBase(h: number, shard: number): number {
    return (shard * this.buckets + firstBucket(h, this.buckets)) * K.kSlotsPerBucket
  }

  /** The first slot of the key's second bucket (index_probe.secondBucket); -1 when a shard has one bucket. */
  secondBase(h: number, shard: number): number {
    return this.buckets === 1 ? -1 : (shard * this.buckets + secondBucket(h, this.buckets)) * K.kSlotsPerBucket
  }
}
