import { announceNamespaceChanged } from '../announce.js'
import { bounded } from '../bounded.js'
import { str } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect } from '../connect.js'
import type { Client } from '../connect.js'
import { CliError, oneLine } from '../errors.js'
import { openLines } from '../lines.js'
import type { Line } from '../lines.js'
import { out, outJson, plural, ProblemLog, seconds } from '../output.js'
import { Progress } from '../progress.js'
import { BACKUP_FORMAT, inNamespace } from './backup.js'
import type { BackupHeader, BackupLine } from './backup.js'

const CONCURRENCY = 32
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

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
  if (typeof o.namespace !== 'string' || o.namespace === '' || o.namespace.includes('|')) {
    throw new CliError(`${source} line ${line.no}: the backup header has no valid "namespace"`)
  }
  return { nearcache_backup: o.nearcache_backup, namespace: o.namespace, created: String(o.created ?? '') }
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
  if (!inNamespace(l.k, namespace)) return `key ${JSON.stringify(l.k)} is not in namespace '${namespace}'`
  if (typeof l.v !== 'string' || l.v === '' || l.v.length % 4 !== 0 || !BASE64.test(l.v)) return '"v" must be the base64 of a DUMP payload'
  if (typeof l.pttl !== 'number' || !Number.isSafeInteger(l.pttl) || l.pttl < -1) return '"pttl" must be -1 (no TTL) or the remaining milliseconds'
  return { k: l.k, v: l.v, pttl: l.pttl }
}

export const restore: Command = {
  name: 'restore',
  summary: 'Restore a backup read from stdin',
  usage: 'restore [--replace] [--from FILE] < FILE',
  help: `Reads a backup written by 'nearcache backup' and RESTOREs every key with the TTL
it had left when the backup was taken (none for -1), routed by key on a Cluster.
Keys that already exist are skipped (and counted) unless --replace is given.
The namespace comes from the backup's header; --namespace, when given, must match it.
Lines that are not valid are reported with their line numbers and make the exit
code 1; the valid lines are restored anyway. Running nearcache processes are told
to drop their L1 copies of the namespace afterwards.

For an exact copy, restore into an empty namespace. Over a namespace in use: a tag
epoch that exists is skipped like any key, so restored entries whose tag was
invalidated since the backup read as missing; with --replace the epochs go back
to their backed-up values, which can revive entries invalidated since the backup.
An entry's expiry time is also kept inside its value: restored after that time,
it reads as missing even though Redis keeps it for the TTL recorded in the backup.

Options:
  --replace     Overwrite keys that already exist
  --from FILE   Read FILE instead of stdin`,
  options: {
    replace: { type: 'boolean' },
    from: { type: 'string' },
  },
  async run({ globals, values }) {
    const replace = values.replace === true
    const source = await openLines(str(values.from), 'restore')
    const lines = source.lines()
    let first: Line | undefined
    for (;;) {
      const r = await lines.next()
      if (r.done) break
      if (r.value.text.trim() !== '') {
        first = r.value
        break
      }
    }
    const header = parseHeader(first, source.name)
    const ns = header.namespace
    if (globals.namespaceGiven && globals.namespace !== ns) {
      throw new CliError(`the backup is of namespace '${ns}', not '${globals.namespace}' (--namespace)`)
    }
    let client: Client | undefined
    const started = performance.now()
    let restored = 0
    let skipped = 0
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
      const put = async (no: number, l: BackupLine) => {
        const ttl = l.pttl < 0 ? 0 : Math.max(1, l.pttl)
        const payload = Buffer.from(l.v, 'base64')
        try {
          if (replace) await c.restore(l.k, ttl, payload, 'REPLACE')
          else await c.restore(l.k, ttl, payload)
          restored++
        } catch (err) {
          const reply = err instanceof Error && err.name === 'ReplyError' ? err.message : undefined
          if (reply?.startsWith('BUSYKEY')) skipped++
          else if (reply !== undefined && !/^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|READONLY|MOVED|ASK|OOM)\b/.test(reply)) {
            invalid.add(no, `Redis refused the key ${JSON.stringify(l.k)}: ${oneLine(err)}`)
          } else failed.add(no, `key ${JSON.stringify(l.k)} not restored: ${oneLine(err)}`)
        }
      }
      for await (const { no, text } of { [Symbol.asyncIterator]: () => lines }) {
        if (text.trim() === '') continue
        const line = parseKeyLine(text, ns)
        if (typeof line === 'string') {
          invalid.add(no, line)
          continue
        }
        await tasks.add(() => put(no, line))
      }
      await tasks.drain()
      // Running servers drop their L1 copies of the namespace, so they read what was restored.
      if (restored > 0) await announceNamespaceChanged(c, ns)
    } finally {
      progress?.stop()
      await disconnect(client)
    }
    invalid.finish()
    failed.finish()
    const result = {
      namespace: ns,
      source: source.name,
      created: header.created,
      restored,
      skipped,
      invalid: invalid.count,
      failed: failed.count,
      errors: [...invalid.kept, ...failed.kept].sort((a, b) => a.line - b.line),
      ms: Math.round(performance.now() - started),
    }
    if (globals.json) await outJson(result)
    else {
      const skip = skipped > 0 ? ` (already present${replace ? '' : '; --replace overwrites them'})` : ''
      await out(
        `restore: namespace '${ns}' (backup of ${header.created || 'unknown date'}) into ${globals.target.label}: ` +
          `${restored} restored, ${skipped} skipped${skip}, ${plural(result.invalid, 'invalid line')}, ${result.failed} failed in ${seconds(result.ms)}`,
      )
    }
    return result.invalid + result.failed > 0 ? 1 : 0
  },
}
