import { createHash } from 'node:crypto'
import { initHash } from '../../../wasm/hash.js'
import { prefixGlob, scanNode } from '../../l2/scan.js'
import { Script } from '../../l2/scripts.js'
import { EntryCipher } from '../../security/entry_cipher.js'
import { intOption } from '../args.js'
import { bounded } from '../bounded.js'
import type { Command } from '../command.js'
import { connect, disconnect, masters, nodeAddress } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, oneLine } from '../errors.js'
import { AUDIT_HELP, AUDIT_OPTIONS } from '../audit_flag.js'
import { KEYS_HELP, KEYS_OPTIONS, loadKeys } from '../keys.js'
import { out, outJson, plural, ProblemLog, seconds } from '../output.js'
import { Progress } from '../progress.js'
import { keyText } from './restore.js'

/** Tries per entry when writes keep racing the rekey. */
export const MAX_TRIES = 5

/**
 * KEYS[1]; ARGV: SHA-1 of the bytes read, the new bytes. Replaces the value, its
 * TTL kept, only if the key still holds the bytes read: a write that raced the
 * rekey is never overwritten. Answers 1 when written, 0 when the key changed.
 */
const REPLACE_IF_SAME = new Script(`
local cur = redis.call('GET', KEYS[1])
if (not cur) or redis.sha1hex(cur) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
`)

export interface Counts {
  scanned: number
  rekeyed: number
  current: number
  raced: number
  skipped: number
  unreadable: number
  plaintext: number
  gone: number
}

export const rekey: Command = {
  name: 'rekey',
  audited: true,
  summary: 'Re-encrypt every entry of a namespace under the first key',
  usage: 'rekey --namespace NS --keys-file FILE [--concurrency N]',
  help: `Key rotation. SCANs the namespace's entries on every master and seals each one
that is not under the first key again under it (read, open, seal, then a Lua
compare-and-set that keeps the TTL: a write racing the rekey is never lost; the
entry is read again and retried, at most ${MAX_TRIES} times, counted as raced).
Entries that do not open under the keys given are reported and counted
(unreadable), never changed or deleted. Plaintext entries are counted and left as
they are: rekey cannot tell a genuine one from one planted by whoever can write
to Redis (they read only where acceptPlaintext is on).

Rotation: (1) add the new key second in every process's encryption.keys,
(2) move it first everywhere (processes now write under it), (3) run rekey with
the same list, (4) when it reports no entry left under an older key, remove the
old key. Removing a key makes everything sealed with it unreadable: entries,
backups, write-behind WAL segments and dead letters made before the rotation.

Options:
  --concurrency N     Entries in flight at once (default 32)
${KEYS_HELP}
${AUDIT_HELP}

Progress goes to stderr; the summary (rekeyed / already current / raced / unreadable)
to stdout, or as JSON with --json. Exit code 1 when an entry is left under an older key.`,
  options: { concurrency: { type: 'string' }, ...KEYS_OPTIONS, ...AUDIT_OPTIONS },
  async run({ globals, values }) {
    const concurrency = intOption(values.concurrency, 'concurrency', 32, 1, 10_000, 'rekey')
    const secrets = await loadKeys(values, process.env)
    if (!secrets) throw new CliError('rekey needs the keys: --keys-file FILE or env NEARCACHE_KEYS (the first key is the one entries are sealed under)')
    await initHash()
    const cipher = new EntryCipher(secrets.keyring, false)
    const primary = secrets.keyring.primary.id
    const ns = globals.namespace
    const c = newCounts()
    let progress: Progress | undefined
    const problems = new ProblemLog('rekey', 50, () => progress?.clear())
    const started = performance.now()
    let client: Client | undefined
    try {
      client = await connect(globals.target)
      const cl = client
      progress = new Progress('rekey', () => ({ done: c.rekeyed + c.current, failed: c.unreadable + c.skipped, fraction: undefined }))
      const tasks = bounded(concurrency)
      let no = 0
      for (const node of masters(cl)) {
        try {
          for await (const batch of scanNode(node, prefixGlob(`${ns}:`))) {
            for (const key of batch) {
              const n = ++no
              await tasks.add(() => rekeyOne(cl, cipher, primary, key, c, (why) => problems.add(n, why)))
            }
          }
        } catch (err) {
          throw new CliError(`scanning ${nodeAddress(node)} failed: ${oneLine(err)}`, { cause: err })
        }
      }
      await tasks.drain()
    } finally {
      progress?.stop()
      await disconnect(client)
    }
    problems.finish()
    const left = c.unreadable + c.skipped
    const result = { namespace: ns, keyId: primary, ...c, leftUnderOlderKeys: left, ms: Math.round(performance.now() - started) }
    if (globals.json) await outJson(result)
    else {
      const older = secrets.keyring.ids.filter((id) => id !== primary)
      const verdict =
        left === 0
          ? `no entry it saw is left under an older key${older.length ? `: key${older.length > 1 ? 's' : ''} ${older.join(', ')} can be removed once no process writes with ${older.length > 1 ? 'them' : 'it'} first and no backup, WAL or dead letter sealed with ${older.length > 1 ? 'them' : 'it'} is needed` : ''}`
          : `${plural(left, 'entry', 'entries')} left under an older key or unreadable (see above): do not remove a key yet`
      await out(
        `rekey: namespace '${ns}' on ${globals.target.label}, key ${primary}: ${c.rekeyed} rekeyed, ${c.current} already current, ` +
          `${c.raced} raced, ${c.unreadable} unreadable, ${c.plaintext} plaintext (left as is), ${c.gone} gone; ${plural(c.scanned, 'key')} in ${seconds(result.ms)}\n${verdict}`,
      )
    }
    return left > 0 ? 1 : 0
  },
}

export function newCounts(): Counts {
  return { scanned: 0, rekeyed: 0, current: 0, raced: 0, skipped: 0, unreadable: 0, plaintext: 0, gone: 0 }
}

/** Brings one entry under the primary key; see the command's help. Never throws. */
export async function rekeyOne(client: Client, cipher: EntryCipher, primary: number, key: string, c: Counts, report: (why: string) => void): Promise<void> {
  c.scanned++
  let raced = false
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    let stored: Buffer | null
    try {
      stored = await client.getBuffer(key)
    } catch (err) {
      c.unreadable++
      return report(`key ${keyText(key)}: cannot be read (${oneLine(err)})`)
    }
    if (stored === null) {
      c.gone++ // deleted or expired since the SCAN
      return
    }
    const id = EntryCipher.keyIdOf(stored)
    if (id === primary) {
      c.current++
      return
    }
    if (id === undefined) {
      c.plaintext++
      return
    }
    let sealed: Buffer
    try {
      sealed = cipher.seal(key, cipher.open(key, stored))
    } catch (err) {
      c.unreadable++
      return report(`key ${keyText(key)}: ${oneLine(err)}`)
    }
    const sha = createHash('sha1').update(stored).digest('hex')
    let done: number
    try {
      done = Number(await REPLACE_IF_SAME.run(client, [key], [sha, sealed]))
    } catch (err) {
      c.skipped++
      return report(`key ${keyText(key)}: could not be written (${oneLine(err)}); left as it is (run rekey again)`)
    }
    if (done === 1) {
      c.rekeyed++
      return
    }
    if (!raced) c.raced++
    raced = true
  }
  c.skipped++
  report(`key ${keyText(key)}: written by others ${MAX_TRIES} times during the rekey; left as it is (run rekey again)`)
}
