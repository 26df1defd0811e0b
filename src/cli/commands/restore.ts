import { announceNamespaceChanged } from '../announce.js'
import { bounded } from '../bounded.js'
import { str } from '../args.js'
import type { BoundedLine } from '../bounded_lines.js'
import { dumpProblem } from '../dump_payload.js'
import { inNamespace, namespacePrefixes } from '../../keys.js'
import { validateNamespace } from '../../options/options.js'
import { MAX_TTL_MS, parseBytes } from '../../util/units.js'
import type { Command } from '../command.js'
import { connect, disconnect } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, oneLine, UsageError } from '../errors.js'
import { openLines } from '../lines.js'
import type { Line } from '../lines.js'
import { out, outJson, plural, ProblemLog, quoted, seconds } from '../output.js'
import { Progress } from '../progress.js'
import { AUDIT_HELP, AUDIT_OPTIONS } from '../audit_flag.js'
import { KEYS_HELP, KEYS_OPTIONS, loadKeys } from '../keys.js'
import { planEntry, writeSealed } from '../restore_sealed.js'
import { BusSigner } from '../../l2/bus_signer.js'
import { EntryCipher } from '../../security/entry_cipher.js'
import { initHash } from '../../../wasm/hash.js'
import { BACKUP_FORMAT } from './backup.js'
import type { BackupHeader, BackupLine } from './backup.js'

const CONCURRENCY = 32
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
/** Largest DUMP payload restored by default (--max-value), and the most --max-value may say (Redis's string limit). */
export const DEFAULT_MAX_VALUE = 64 * 1024 * 1024
export const MAX_MAX_VALUE = 512 * 1024 * 1024
/** Room on a line for the key, the TTL and the JSON around the base64 payload. */
const LINE_OVERHEAD = 64 * 1024

/** Longest line read for payloads of up to `maxValue` bytes: their base64 and LINE_OVERHEAD. */
export function maxLineBytes(maxValue: number): number {
  return Math.ceil(maxValue / 3) * 4 + LINE_OVERHEAD
}

/** A key for messages: quoted, escaped, and cut to 200 characters. */
export function keyText(k: string): string {
  return k.length > 200 ? `${quoted(k.slice(0, 200))}...` : quoted(k)
}

/**
 * The key a backed-up key gets in namespace `into`: the backup namespace's
 * prefix (its entries, child namespaces, tag epochs) replaced by `into`'s.
 * Undefined when the key is not in namespace `from`.
 */
export function renameKey(key: string, from: string, into: string): string | undefined {
  const src = namespacePrefixes(from)
  const dst = namespacePrefixes(into)
  for (let i = 0; i < src.length; i++) {
    const p = src[i] as string
    if (key.startsWith(p)) return (dst[i] as string) + key.slice(p.length)
  }
  return undefined
}

/** The header line, or a CliError saying why this is not a backup we can read. */
export function parseHeader(line: Line | undefined, source: string): BackupHeader {
  if (line === undefined) throw new CliError(`${source} is empty: no nearcache backup header`)
  let h: unknown
  try {
    h = JSON.parse(line.text)
  } catch {
    h = undefined
  }
  const o = (typeof h === 'object' && h !== null ? h : {}) as Partial<BackupHeader>
  if (!('nearcache_backup' in o)) {
    throw new CliError(
      `${source} line ${line.no}: not a nearcache backup header (expected {"nearcache_backup": ${BACKUP_FORMAT}, "namespace": ..., "created": ...})`,
    )
  }
  if (o.nearcache_backup !== BACKUP_FORMAT) {
    throw new CliError(`${source} line ${line.no}: backup format ${JSON.stringify(o.nearcache_backup)} is not supported (this nearcache reads format ${BACKUP_FORMAT})`)
  }
  let valid = typeof o.namespace === 'string'
  try {
    validateNamespace(o.namespace)
  } catch {
    valid = false
  }
  if (!valid) throw new CliError(`${source} line ${line.no}: the backup header has no valid "namespace"`)
  return { nearcache_backup: o.nearcache_backup, namespace: o.namespace as string, created: String(o.created ?? '').slice(0, 64) }
}

/** One key line, or the reason it is not valid. */
export function parseKeyLine(text: string, namespace: string): BackupLine | string {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (err) {
    return `not valid JSON (${oneLine(err)})`
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'expected an object {"k": ..., "v": ..., "pttl": ...}'
  const l = o as Partial<BackupLine> & { nearcache_backup?: unknown }
  if ('nearcache_backup' in l) return 'a second backup header (were two backups concatenated?)'
  if (typeof l.k !== 'string' || l.k === '') return '"k" must be a non-empty string'
  if (!inNamespace(l.k, namespace)) return `key ${keyText(l.k)} is not in namespace '${namespace}' (refused)`
  if (typeof l.v !== 'string' || l.v === '' || l.v.length % 4 !== 0 || !BASE64.test(l.v)) return '"v" must be the base64 of a DUMP payload'
  if (typeof l.pttl !== 'number' || !Number.isSafeInteger(l.pttl) || l.pttl < -1 || l.pttl > MAX_TTL_MS) {
    return `"pttl" must be -1 (no TTL) or the remaining milliseconds, at most ${MAX_TTL_MS}`
  }
  return { k: l.k, v: l.v, pttl: l.pttl }
}

/** A key line ready for RESTORE: its key in the target namespace, and the decoded, checked payload. */
export interface CheckedLine {
  k: string
  pttl: number
  payload: Buffer
}

/**
 * One line of the backup (after the header), for a backup of namespace `from`
 * restored into `into`: the line to restore, the reason it is refused, or
 * undefined for a blank line. Everything but Redis's own answer is checked here.
 */
export function checkLine(l: BoundedLine, from: string, into: string, maxValue: number): CheckedLine | string | undefined {
  if (!('text' in l)) return `the line is ${l.tooLong} bytes long, over the limit for --max-value ${maxValue} (refused, not read)`
  if (l.text.trim() === '') return undefined
  const line = parseKeyLine(l.text, from)
  if (typeof line === 'string') return line
  const payload = Buffer.from(line.v, 'base64')
  if (payload.length > maxValue) return `the value of key ${keyText(line.k)} is ${payload.length} bytes, over --max-value ${maxValue}`
  const problem = dumpProblem(payload)
  if (problem) return `key ${keyText(line.k)}: ${problem}`
  const k = renameKey(line.k, from, into)
  if (k === undefined) return `key ${keyText(line.k)} is not in namespace '${from}' (refused)`
  return { k, pttl: line.pttl, payload }
}

export const restore: Command = {
  name: 'restore',
  audited: true,
  summary: 'Restore a backup into a namespace',
  usage: 'restore --namespace NS [--into NS2] [--replace] [--from FILE] [--max-value SIZE] [--keys-file FILE] < FILE',
  help: `Reads a backup written by 'nearcache backup' and RESTOREs every key with the TTL
it had left when the backup was taken (none for -1), routed by key on a Cluster.
Keys that already exist are skipped (and counted) unless --replace is given.

It writes only into the namespace given with --namespace (default 'nc'), and
refuses a backup of another namespace: --into NS2 restores it into NS2 instead,
its keys renamed from the backup's namespace to NS2 (with --into, --namespace
when given must name the backup's namespace). A line whose key is outside the
backup's namespace, or whose value is not a Redis string (nearcache writes only
strings), or whose DUMP payload fails its CRC64 check, is refused with its line
number and key, never written. Lines are read one at a time, up to the base64
of --max-value bytes of payload (default 64mb, at most 512mb): a longer line is
refused with its number without being held in memory.
Refused lines make the exit code 1; the valid lines are restored anyway. Running
nearcache processes are told to drop their L1 copies of the namespace afterwards.

For an exact copy, restore into an empty namespace. Over a namespace in use: a tag
epoch that exists is skipped like any key, so restored entries whose tag was
invalidated since the backup read as missing; with --replace the epochs go back
to their backed-up values, which can revive entries invalidated since the backup.
An entry's expiry time is also kept inside its value: restored after that time,
it reads as missing even though Redis keeps it for the TTL recorded in the backup.

Encrypted entries: with keys (--keys-file or NEARCACHE_KEYS), every entry must
open under them (at the key it was backed up from) or it is refused and counted
("unopened"), never written; with --into, the entries are sealed again for
their new keys. Without keys, bytes are copied, and --into refuses encrypted
entries. Backups of entries sealed with a key since removed cannot be restored:
run 'nearcache rekey' before removing a key.

Options:
  --into NS2        Restore a backup of another namespace into NS2
  --replace         Overwrite keys that already exist
  --from FILE       Read FILE instead of stdin
  --max-value SIZE  Largest DUMP payload of one key (default 64mb, at most 512mb)
${KEYS_HELP}
${AUDIT_HELP}`,
  options: {
    replace: { type: 'boolean' },
    from: { type: 'string' },
    into: { type: 'string' },
    'max-value': { type: 'string' },
    ...KEYS_OPTIONS, ...AUDIT_OPTIONS,
  },
  async run({ globals, values }) {
    const replace = values.replace === true
    const intoText = str(values.into)
    let into: string | undefined
    if (intoText !== undefined) {
      try {
        into = validateNamespace(intoText, '--into')
      } catch (err) {
        throw new UsageError(oneLine(err), 'restore')
      }
    }
    let maxValue = DEFAULT_MAX_VALUE
    try {
      maxValue = parseBytes(str(values['max-value']), '--max-value', DEFAULT_MAX_VALUE)
    } catch (err) {
      throw new UsageError(oneLine(err), 'restore')
    }
    if (maxValue > MAX_MAX_VALUE) throw new UsageError(`--max-value is at most 512mb (Redis's string limit)`, 'restore')
    const secrets = await loadKeys(values, process.env)
    // The cipher's envelope checks hash with the wasm hasher.
    await initHash()
    const cipher = secrets ? new EntryCipher(secrets.keyring, false) : undefined
    const source = await openLines(str(values.from), 'restore')
    const lines = source.bounded(maxLineBytes(maxValue))
    let first: BoundedLine | undefined
    for (;;) {
      const r = await lines.next()
      if (r.done) break
      if (!('text' in r.value) || r.value.text.trim() !== '') {
        first = r.value
        break
      }
    }
    if (first && !('text' in first)) throw new CliError(`${source.name} line ${first.no}: not a nearcache backup header (a line of ${first.tooLong} bytes)`)
    const header = parseHeader(first as Line | undefined, source.name)
    const from = header.namespace
    // Where the keys go: --into, else --namespace (which must then be the backup's).
    const ns = into ?? globals.namespace
    if (into === undefined && from !== ns) {
      throw new CliError(
        `the backup is of namespace '${from}', not '${ns}' (--namespace${globals.namespaceGiven ? '' : `, default '${ns}'`}): ` +
          `restore it with --namespace ${from}, or into '${ns}' with --into ${ns}`,
      )
    }
    if (into !== undefined && globals.namespaceGiven && globals.namespace !== from) {
      throw new CliError(`the backup is of namespace '${from}', not '${globals.namespace}' (--namespace names the backup's namespace when --into is given)`)
    }
    let client: Client | undefined
    const started = performance.now()
    let restored = 0
    let skipped = 0
    let unopened = 0
    let progress: Progress | undefined
    const invalid = new ProblemLog('restore', 50, () => progress?.clear())
    const failed = new ProblemLog('restore', 50, () => progress?.clear())
    try {
      client = await connect(globals.target)
      const c = client
      progress = new Progress('restore', () => ({
        done: restored + skipped,
        failed: invalid.count + failed.count,
        fraction: source.size ? source.consumed / source.size : undefined,
      }))
      const tasks = bounded(CONCURRENCY)
      const put = async (no: number, l: CheckedLine) => {
        const ttl = l.pttl < 0 ? 0 : Math.max(1, l.pttl)
        const payload = l.payload
        const plan = planEntry(cipher, payload, l.k, ns === from ? l.k : (renameKey(l.k, ns, from) as string), maxValue)
        if (plan.kind === 'refuse') {
          unopened++
          invalid.add(no, `key ${keyText(l.k)} refused: ${plan.why}`)
          return
        }
        try {
          if (plan.kind === 'set') {
            if (await writeSealed(c, l.k, plan.value, ttl, replace)) restored++
            else skipped++
          } else if (replace) await c.restore(l.k, ttl, payload, 'REPLACE')
          else await c.restore(l.k, ttl, payload)
          if (plan.kind === 'restore') restored++
        } catch (err) {
          const reply = err instanceof Error && err.name === 'ReplyError' ? err.message : undefined
          if (reply?.startsWith('BUSYKEY')) skipped++
          else if (reply !== undefined && !/^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|MOVED|ASK|OOM)\b/.test(reply)) {
            invalid.add(no, `Redis refused the key ${keyText(l.k)}: ${oneLine(err)}`)
          } else failed.add(no, `key ${keyText(l.k)} not restored: ${oneLine(err)}`)
        }
      }
      for await (const l of { [Symbol.asyncIterator]: () => lines }) {
        const line = checkLine(l, from, ns, maxValue)
        if (line === undefined) continue
        if (typeof line === 'string') {
          invalid.add(l.no, line)
          continue
        }
        await tasks.add(() => put(l.no, line))
      }
      await tasks.drain()
      // Running servers drop their L1 copies of the namespace, so they read what was restored.
      if (restored > 0) await announceNamespaceChanged(c, ns, secrets ? new BusSigner(secrets.keyring) : undefined)
    } finally {
      progress?.stop()
      await disconnect(client)
    }
    invalid.finish()
    failed.finish()
    const result = {
      namespace: ns,
      ...(into !== undefined ? { from } : {}),
      source: source.name,
      created: header.created,
      restored,
      skipped,
      ...(secrets ? { unopened } : {}),
      invalid: invalid.count,
      failed: failed.count,
      errors: [...invalid.kept, ...failed.kept].sort((a, b) => a.line - b.line),
      ms: Math.round(performance.now() - started),
    }
    if (globals.json) await outJson(result)
    else {
      const skip = skipped > 0 ? ` (already present${replace ? '' : '; --replace overwrites them'})` : ''
      await out(
        `restore: namespace '${ns}'${into !== undefined ? ` (renamed from '${from}')` : ''} (backup of ${quoted(header.created || 'unknown date')}) into ${globals.target.label}: ` +
          `${restored} restored, ${skipped} skipped${skip}, ${plural(result.invalid, 'invalid line')}, ${result.failed} failed in ${seconds(result.ms)}`,
      )
    }
    return result.invalid + result.failed > 0 ? 1 : 0
  },
}
