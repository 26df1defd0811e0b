import { closeSync } from 'node:fs'
import { CacheError } from '../errors.js'
import { Keyring } from '../security/keyring.js'
import type { EncryptionKeyInput } from '../security/keyring.js'
import { str } from './args.js'
import type { OptionSpecs, OptionValues } from './args.js'
import { CliError, oneLine } from './errors.js'
import { openRegular, readBounded } from './read_file.js'

/**
 * The encryption keys of the commands that write or announce (warm, restore,
 * invalidate, rekey): from `--keys-file FILE`, else from env NEARCACHE_KEYS.
 *
 * Format (both sources): JSON `[{"id": 1, "key": "<base64 of 32 bytes>"}, ...]`,
 * the first key encrypting and signing, or one key per line `id:base64` (blank
 * lines and lines starting with '#' are skipped), in the same order.
 *
 * The file must be a regular file (not a symlink), owned by the user running the
 * command, with no permission for group or others (mode 0600 or 0400): a key
 * file anyone else can read is refused, as ssh does. At most MAX_KEYS_FILE_BYTES.
 * No message ever quotes the file's or the variable's content.
 */
export const MAX_KEYS_FILE_BYTES = 64 * 1024
export const KEYS_ENV = 'NEARCACHE_KEYS'

export const KEYS_OPTIONS: OptionSpecs = { 'keys-file': { type: 'string' } }
export const KEYS_HELP = `  --keys-file FILE    The encryption keys (else env ${KEYS_ENV}): JSON [{"id":1,"key":"<base64>"}]
                      or lines id:base64; the first key encrypts and signs. The file
                      must be yours and mode 0600 (or stricter). Without keys, writes
                      are plaintext and announcements unsigned.`

/** The keys, validated into a keyring; the key text only in a private field (inspect shows none). */
export class CliKeys {
  readonly #keys: EncryptionKeyInput[]
  constructor(
    keys: EncryptionKeyInput[],
    readonly keyring: Keyring,
    /** Where they came from, for messages: '--keys-file FILE' or 'NEARCACHE_KEYS'. */
    readonly source: string,
  ) {
    this.#keys = keys
  }

  /** The `encryption` option of a cache opened with these keys. */
  option(): { keys: EncryptionKeyInput[] } {
    return { keys: this.#keys.map((k) => ({ ...k })) }
  }

  toJSON(): object {
    return { ids: this.keyring.ids, source: this.source }
  }
}

/** The keys the command was given, or undefined when none were. Throws CliError. */
export async function loadKeys(values: OptionValues, env: NodeJS.ProcessEnv): Promise<CliKeys | undefined> {
  const file = str(values['keys-file'])
  if (file !== undefined) {
    const source = `--keys-file ${file}`
    return parseKeys(readKeysFile(file), source)
  }
  const text = env[KEYS_ENV]
  if (text === undefined || text.trim() === '') return undefined
  if (text.length > MAX_KEYS_FILE_BYTES) throw new CliError(`${KEYS_ENV} is ${text.length} characters long, over ${MAX_KEYS_FILE_BYTES}`)
  return parseKeys(text, KEYS_ENV)
}

/** The file's text, after the checks of the module comment. */
function readKeysFile(path: string): string {
  const { fd, mode, uid } = openRegular(path, 'the keys file', { noFollow: true })
  try {
    const me = process.getuid?.()
    if (me !== undefined && uid !== me) throw new CliError(`refusing the keys file ${path}: it is owned by uid ${uid}, not by you (uid ${me})`)
    if ((mode & 0o077) !== 0) {
      throw new CliError(`refusing the keys file ${path}: its mode is 0${(mode & 0o777).toString(8)}, readable or writable by others; run chmod 600 ${path}`)
    }
    const data = readBounded(fd, MAX_KEYS_FILE_BYTES)
    if (data.length > MAX_KEYS_FILE_BYTES) throw new CliError(`refusing the keys file ${path}: it is over ${MAX_KEYS_FILE_BYTES} bytes`)
    const text = data.toString('utf8')
    data.fill(0)
    return text
  } finally {
    closeSync(fd)
  }
}

/** Parses and validates the keys; no message quotes the text. */
export function parseKeys(text: string, source: string): CliKeys {
  const trimmed = text.trim()
  let list: unknown[]
  if (trimmed.startsWith('[')) {
    try {
      list = JSON.parse(trimmed) as unknown[]
    } catch {
      // JSON.parse's message quotes the text around the fault: not shown.
      throw new CliError(`${source}: not valid JSON (expected [{"id": 1, "key": "<base64>"}, ...])`)
    }
    if (!Array.isArray(list)) throw new CliError(`${source}: expected a JSON list of keys`)
  } else {
    list = []
    const lines = trimmed.split(/\r?\n/)
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim()
      if (line === '' || line.startsWith('#')) continue
      const m = /^(\d{1,5})\s*:\s*(\S+)$/.exec(line)
      if (!m) throw new CliError(`${source}: line ${i + 1} is not id:base64 (nor is the text a JSON list)`)
      list.push({ id: Number(m[1]), key: m[2] })
    }
  }
  const keys: EncryptionKeyInput[] = []
  list.forEach((k, i) => {
    const o = (typeof k === 'object' && k !== null ? k : {}) as Record<string, unknown>
    // Checked here so that Keyring's messages, which describe bad values, never see a misplaced key.
    if (typeof o.id !== 'number' || typeof o.key !== 'string' || Object.keys(o).length !== 2) {
      throw new CliError(`${source}: key ${i} must be {"id": <0-65535>, "key": "<base64 of 32 bytes>"}`)
    }
    keys.push({ id: o.id, key: o.key })
  })
  try {
    return new CliKeys(keys, Keyring.from(keys, source), source)
  } catch (err) {
    if (err instanceof CacheError) throw new CliError(oneLine(err))
    throw err
  }
}
