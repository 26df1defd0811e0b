import type { Writable } from 'node:stream'
import { namespacePrefixes, tagKey } from '../../keys.js'
import { str } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect, masters } from '../connect.js'
import type { Client } from '../connect.js'
import { note, plural, seconds, write } from '../output.js'
import { prefixGlob, scanNode } from '../../l2/scan.js'
import { RDB_TYPE_STRING } from '../dump_payload.js'
import { openOutFile } from '../safe_file.js'
import type { OutFile } from '../safe_file.js'

export const BACKUP_FORMAT = 1
/** Keys dumped at once. */
const SLICE = 64

export interface BackupHeader {
  nearcache_backup: number
  namespace: string
  created: string
}

/** One key of a backup: its name, base64 of its DUMP, its remaining TTL in ms (-1 = none). */
export interface BackupLine {
  k: string
  v: string
  pttl: number
}

export const backup: Command = {
  name: 'backup',
  summary: "Write a namespace's keys to stdout as JSON lines",
  usage: 'backup [--namespace NS] --out FILE [--force]',
  help: `Writes every Redis key of the namespace - its entries ('NS:*', child namespaces
included) and its tag epochs ('${tagKey('NS', '*')}') - as JSON lines, scanning every
master of a Cluster. The first line is a header:
  {"nearcache_backup": 1, "namespace": "NS", "created": "<ISO time>"}
then one line per key:
  {"k": "<key>", "v": "<base64 of DUMP>", "pttl": <remaining ms, or -1 for none>}
Values stay in Redis's own serialization, so 'nearcache restore' brings back
exactly what was there (types, tags and TTLs included). DUMP payloads are
specific to the Redis version: restore into the same or a newer one. The backup
is not a point-in-time snapshot: keys written while it runs may or may not be in it.
Only string keys are backed up (nearcache writes nothing else); others are
counted and left out.

The file holds every value of the namespace: --out FILE creates it readable by
its owner only (mode 0600), under a temporary name put in place at the end, and
never through a symbolic link. A shell redirect (> FILE) would create it 0644.

Options:
  --out FILE    Write to FILE (mode 0600) instead of stdout; FILE must not exist
  --force       Replace FILE if it exists (atomically; a symlink is still refused)

The summary goes to stderr.`,
  options: { out: { type: 'string' }, force: { type: 'boolean' } },
  async run({ globals, values }) {
    const ns = globals.namespace
    const outFile = str(values.out)
    let sink: Writable = process.stdout
    let file: OutFile | undefined
    if (outFile !== undefined && outFile !== '-') {
      file = await openOutFile(outFile, values.force === true)
      sink = file.stream
    }
    let client: Client | undefined
    const started = performance.now()
    let entries = 0
    let epochs = 0
    let bytes = 0
    let notStrings = 0
    try {
      client = await connect(globals.target)
      const header: BackupHeader = { nearcache_backup: BACKUP_FORMAT, namespace: ns, created: new Date().toISOString() }
      await write(sink, `${JSON.stringify(header)}\n`)
      const nodes = masters(client)
      const epochPrefix = namespacePrefixes(ns).slice(1)
      for (const node of nodes) {
        const seen = new Set<string>()
        for (const prefix of namespacePrefixes(ns)) {
          for await (const batch of scanNode(node, prefixGlob(prefix))) {
            const fresh = batch.filter((k) => !seen.has(k))
            fresh.forEach((k) => seen.add(k))
            const c = client
            // A slice at a time, so that large values do not pile up in memory.
            for (let i = 0; i < fresh.length; i += SLICE) {
              const dumped = await Promise.all(
                fresh.slice(i, i + SLICE).map(async (k) => {
                  const [pttl, dump] = await Promise.all([c.pttl(k), c.dumpBuffer(k)])
                  return { k, pttl, dump }
                }),
              )
              let chunk = ''
              for (const { k, pttl, dump } of dumped) {
                if (dump === null || pttl === -2) continue // expired or removed since the SCAN
                // restore takes only strings (what nearcache writes): leave the others out, counted.
                if (dump[0] !== RDB_TYPE_STRING) {
                  notStrings++
                  continue
                }
                const line: BackupLine = { k, v: dump.toString('base64'), pttl: pttl < 0 ? -1 : pttl }
                chunk += `${JSON.stringify(line)}\n`
                bytes += dump.length
                if (epochPrefix.some((p) => k.startsWith(p))) epochs++
                else entries++
              }
              if (chunk) await write(sink, chunk)
            }
          }
        }
      }
      if (file) {
        await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())))
        await file.commit()
        file = undefined
      }
      const summary = {
        namespace: ns,
        keys: entries + epochs,
        entries,
        tagEpochs: epochs,
        bytes,
        nodes: nodes.length,
        notStrings,
        ms: Math.round(performance.now() - started),
        ...(outFile !== undefined && outFile !== '-' ? { file: outFile } : {}),
      }
      if (globals.json) note(JSON.stringify(summary))
      else {
        note(
          `backup: ${plural(summary.keys, 'key')} of namespace '${ns}' (${plural(entries, 'entry', 'entries')}, ` +
            `${plural(epochs, 'tag epoch')}, ${bytes} bytes of DUMP) from ${plural(nodes.length, 'master')} of ` +
            `${globals.target.label} in ${seconds(summary.ms)}${summary.file ? ` to ${summary.file}` : ''}` +
            (notStrings > 0 ? `; ${plural(notStrings, 'key')} left out: not strings` : ''),
        )
      }
      return 0
    } finally {
      // A failed backup leaves no file (the temporary one is removed).
      await file?.abort()
      await disconnect(client)
    }
  },
}
