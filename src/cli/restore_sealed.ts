import type { Client } from './connect.js'
import { INTERNAL_PREFIX } from '../keys.js'
import { EntryCipher } from '../security/entry_cipher.js'
import { dumpString } from './dump_string.js'
import { oneLine } from './errors.js'

/**
 * What `restore` does with an entry of the backup, given the command's keys
 * (`cipher`, undefined without keys). The sealed bytes are bound to their Redis
 * key (entry_cipher.ts), so:
 *
 * - internal keys (tag epochs: counters, not sealed) are restored as they are;
 * - with keys, an entry must open under them, at the key it was backed up
 *   from; one that does not (another fleet's keys, a removed key, plaintext,
 *   tampered) is refused and counted, never written. Restored under the same
 *   name, its DUMP payload is restored unchanged; renamed (--into), it is
 *   sealed again for its new key and written with SET;
 * - without keys, bytes are copied; an encrypted entry cannot be renamed
 *   (it would never open at its new key), so --into refuses it.
 */
export type SealedPlan = { kind: 'restore' } | { kind: 'set'; value: Buffer } | { kind: 'refuse'; why: string }

export function planEntry(cipher: EntryCipher | undefined, payload: Buffer, key: string, backedUpKey: string, maxValue: number): SealedPlan {
  if (key.startsWith(`${INTERNAL_PREFIX}|`)) return { kind: 'restore' }
  const renamed = key !== backedUpKey
  if (!cipher && !renamed) return { kind: 'restore' }
  const value = dumpString(payload, maxValue)
  if (typeof value === 'string') return { kind: 'refuse', why: `its DUMP payload cannot be read (${value})` }
  if (!cipher) {
    if (EntryCipher.keyIdOf(value) === undefined) return { kind: 'restore' }
    return { kind: 'refuse', why: 'it is encrypted, and an encrypted entry only opens at its own key: restoring it under a new name (--into) needs the keys (--keys-file or NEARCACHE_KEYS)' }
  }
  let plain: Buffer
  try {
    plain = cipher.open(backedUpKey, value)
  } catch (err) {
    return { kind: 'refuse', why: `it does not open under the given keys: ${oneLine(err)}` }
  }
  return renamed ? { kind: 'set', value: cipher.seal(key, plain) } : { kind: 'restore' }
}

/** SET of a re-sealed entry with the backup's TTL (ms, 0: none); false when it exists and `replace` is off. */
export async function writeSealed(c: Client, key: string, value: Buffer, ttl: number, replace: boolean): Promise<boolean> {
  let ok: string | null
  if (ttl > 0) ok = replace ? await c.set(key, value, 'PX', ttl) : await c.set(key, value, 'PX', ttl, 'NX')
  else ok = replace ? await c.set(key, value) : await c.set(key, value, 'NX')
  return ok !== null
}
