import type { CorruptEntryError } from '../errors.js'
import type { EntryCipher } from '../security/entry_cipher.js'
import { sha1 } from '../util/sha1.js'
import { TierLayer } from './layer.js'
import type { Tier, TierWrite } from './tier.js'

/**
 * L2 with authenticated encryption (`encryption` option): the top of the owner's
 * L2 stack, so everything below it (write-behind's queue and WAL, Redis, and so
 * backups) holds sealed envelopes, and everything above it (the L1, attached
 * threads through the owner's TierServer, the read path) sees plain ones: an L1
 * hit pays nothing, and keys never leave the owner thread.
 *
 * Reads open what they get: stored bytes that do not authenticate (planted,
 * copied from another key, header or ciphertext edited, unknown key id,
 * plaintext unless `acceptPlaintext`) are a miss, reported through `onCorrupt`
 * like any corrupt entry. Writes seal. Tag-epoch counters, locks and prefix
 * deletes pass through unchanged (counters are plain integers: see the security
 * model in the README).
 */
export class EncryptingTier extends TierLayer {
  /** Stored bytes opened so far (successfully or not): what tests count to prove L1 hits skip decryption. */
  opens = 0

  constructor(
    inner: Tier,
    private readonly cipher: EntryCipher,
    private readonly onCorrupt: (err: CorruptEntryError) => void,
  ) {
    super(inner)
  }

  /** The plain envelope of `stored`, or null (reported) when it does not open. */
  private open(key: string, stored: Buffer | null): Buffer | null {
    if (stored === null) return null
    this.opens++
    try {
      return this.cipher.open(key, stored)
    } catch (err) {
      try {
        this.onCorrupt(err as CorruptEntryError)
      } catch {
        // A reporter never turns a miss into a failure.
      }
      return null
    }
  }

  private sealed(w: TierWrite): TierWrite {
    return { key: w.key, bytes: this.cipher.seal(w.key, w.bytes), px: w.px }
  }

  override peek(key: string): Buffer | null | undefined {
    const v = this.inner.peek(key)
    return v === undefined || v === null ? v : this.open(key, v)
  }
  override async get(key: string, fresh?: boolean): Promise<Buffer | null> {
    return this.open(key, await this.inner.get(key, fresh))
  }
  override async mget(keys: string[], fromL1?: boolean[]): Promise<(Buffer | null)[]> {
    const out = await this.inner.mget(keys, fromL1)
    return out.map((v, i) => this.open(keys[i] as string, v))
  }
  override set(writes: TierWrite[]): Promise<void> {
    return this.inner.set(writes.map((w) => this.sealed(w)))
  }
  /**
   * `expectSha1` is the SHA-1 of the plain bytes the caller read (`get(key, true)`),
   * or null when it read nothing (absent, or an entry that did not open: both read
   * as missing). Reads the stored bytes again, checks them against that, and swaps
   * on the stored bytes' own SHA-1, so the inner compare-and-swap stays atomic.
   */
  override async casSet(w: TierWrite, expectSha1: string | null): Promise<boolean> {
    const stored = await this.inner.get(w.key, true)
    let storedSha1: string | null = null
    if (stored !== null) {
      let plain: Buffer | undefined
      try {
        plain = this.cipher.open(w.key, stored)
      } catch {
        // Not authentic: it read as missing, so a write expecting "absent" may replace it.
      }
      if (plain === undefined ? expectSha1 !== null : expectSha1 === null || sha1(plain) !== expectSha1) return false
      storedSha1 = sha1(stored)
    } else if (expectSha1 !== null) {
      return false
    }
    return this.inner.casSet(this.sealed(w), storedSha1)
  }
  override async take(keys: string[]): Promise<(Buffer | null)[]> {
    const out = await this.inner.take(keys)
    return out.map((v, i) => this.open(keys[i] as string, v))
  }
}
