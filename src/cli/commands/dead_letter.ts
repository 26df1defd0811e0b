import { announceKeysChanged } from '../announce.js'
import { KEYS_HELP, KEYS_OPTIONS, loadKeys } from '../keys.js'
import type { CliKeys } from '../keys.js'
import { BusSigner } from '../../l2/bus_signer.js'
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { inNamespace } from '../../keys.js'
import { printableKey, readDeadLetters, rewriteDeadLetters } from '../../wal/dead_letter.js'
import type { DeadLetter } from '../../wal/dead_letter.js'
import { releaseLock, takeLock } from '../../wal/wal_lock.js'
import { str } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect } from '../connect.js'
import { CliError, oneLine, UsageError } from '../errors.js'
import { note, out, outJson, plural, table } from '../output.js'

const SUBCOMMANDS = ['show', 'replay']


/** TTL left now, in ms: undefined = none, <= 0 = expired. */
function ttlLeft(d: DeadLetter, now: number): number | undefined {
  return d.px === undefined ? undefined : Math.ceil(d.px - Math.max(0, now - d.time))
}

async function show(dir: string, ns: string | undefined, json: boolean): Promise<number> {
  const { file, letters, bad } = await readDeadLetters(dir)
  const mine = letters.filter(({ letter }) => ns === undefined || inNamespace(letter.key, ns))
  for (const b of bad.slice(0, 20)) note(`nearcache: ${file} line ${b.line} is not a dead letter (${b.why}); skipped`)
  if (json) {
    await outJson(mine.map(({ letter: d }) => ({ seq: d.seq, key: d.key, size: d.bytes.length, px: d.px ?? null, time: new Date(d.time).toISOString(), at: new Date(d.at).toISOString(), reason: d.reason, detail: d.detail })))
    return 0
  }
  if (mine.length === 0) {
    await out(`No dead letters${ns === undefined ? '' : ` of namespace '${ns}'`} in ${file}.`)
    return 0
  }
  const now = Date.now()
  const rows = [['GIVEN UP', 'REASON', 'SIZE', 'TTL LEFT', 'KEY']]
  for (const { letter: d } of mine) {
    const left = ttlLeft(d, now)
    rows.push([new Date(d.at).toISOString(), d.reason, `${d.bytes.length} B`, left === undefined ? 'none' : left <= 0 ? 'expired' : `${Math.ceil(left / 1000)} s`, printableKey(d.key)])
  }
  await out(`${plural(mine.length, 'dead letter')} in ${file}:\n${table(rows)}`)
  const details = [...new Set(mine.map(({ letter }) => letter.detail))].slice(0, 5)
  await out(`Reasons:\n${details.map((d) => `  ${printableKey(d)}`).join('\n')}`)
  return 0
}

async function replay(dir: string, ns: string, globals: Parameters<Command['run']>[0]['globals'], keys: CliKeys | undefined): Promise<number> {
  const st = await stat(dir).catch(() => undefined)
  if (!st?.isDirectory()) throw new CliError(`${dir} is not a write-behind log directory`)
  // The running cache appends to the file: replay only while no process has the log open.
  await takeLock(dir)
  let client
  try {
    const { letters, bad } = await readDeadLetters(dir)
    if (bad.length > 0) note(`nearcache: ${plural(bad.length, 'line')} of the dead-letter file are not dead letters; kept as they are`)
    const mine = letters.filter(({ letter }) => inNamespace(letter.key, ns))
    if (mine.length === 0) {
      await out(`No dead letters of namespace '${ns}' to replay.`)
      return 0
    }
    client = await connect(globals.target)
    const keep = new Set(letters.filter(({ letter }) => !inNamespace(letter.key, ns)).map(({ line }) => line))
    const landedKeys: string[] = []
    let expired = 0
    const failures: string[] = []
    for (const { letter: d, line } of mine) {
      const left = ttlLeft(d, Date.now())
      if (left !== undefined && left <= 0) {
        expired++
        continue
      }
      try {
        if (left === undefined) await client.set(d.key, d.bytes)
        else await client.set(d.key, d.bytes, 'PX', left)
        landedKeys.push(d.key)
      } catch (err) {
        keep.add(line)
        failures.push(`${printableKey(d.key)}: ${oneLine(err)}`)
      }
    }
    const landed = landedKeys.length
    // Running processes of the namespace drop their L1 copies of what changed.
    await announceKeysChanged(client, ns, landedKeys, keys ? new BusSigner(keys.keyring) : undefined).catch((err: unknown) => note(`nearcache: could not announce the replayed keys (${oneLine(err)}); other processes keep their L1 copies until their L1 TTL`))
    // Bad lines stay too: this command removes only what it replayed.
    const kept = letters.filter(({ line }) => keep.has(line)).map(({ line }) => line)
    await rewriteDeadLetters(dir, kept)
    for (const f of failures.slice(0, 20)) note(`nearcache: still refused: ${f}`)
    await out(
      `Replayed ${plural(landed, 'write')} to ${globals.target.label}` +
        (expired ? `; ${plural(expired, 'write')} whose TTL ran out dropped` : '') +
        (failures.length ? `; ${plural(failures.length, 'write')} still refused, kept` : '') +
        `. ${plural(kept.length, 'dead letter')} left in the file.`,
    )
    return failures.length > 0 ? 1 : 0
  } finally {
    await disconnect(client)
    await releaseLock(dir)
  }
}

export const deadLetter: Command = {
  name: 'dead-letter',
  summary: 'Show or replay the writes a write-behind log gave up on',
  usage: 'dead-letter show --dir DIR [--namespace NS] [--json] | dead-letter replay --dir DIR --namespace NS [--redis URL | --cluster NODES]',
  help: `Write-behind moves a write Redis refuses for good (an invalid expire, OOM that
persists, WRONGTYPE, NOPERM) after its attempts, and records of another namespace
found when its log is replayed, to DIR/dead-letter.jsonl.

dead-letter show lists them: when each was given up on, why, its size, the TTL
it has left and its key (control characters escaped); --namespace keeps one
namespace's; --json prints them as a JSON array.

dead-letter replay writes the namespace's dead letters to Redis again (SET with
the TTL they have left; those whose TTL ran out are dropped) and removes the
ones that land from the file. Records of other namespaces stay. It takes the
log's lock: stop the process that uses DIR first. The replayed keys are
announced on the namespace's invalidation channel, so running processes drop
their L1 copies; processes with encryption keys heed only signed announcements,
so give replay the same keys. Dead letters hold the stored bytes (sealed when
the cache encrypts): they are written back as they are.

Options:
  --dir DIR        The writeBehind.dir of the cache
${KEYS_HELP}

Examples:
  nearcache dead-letter show --dir /var/lib/app/wal
  nearcache dead-letter replay --dir /var/lib/app/wal --namespace shop --redis redis://127.0.0.1:6379`,
  options: { dir: { type: 'string' }, ...KEYS_OPTIONS },
  subcommands: SUBCOMMANDS,
  async run({ globals, values, subcommand }) {
    if (subcommand === undefined || !SUBCOMMANDS.includes(subcommand)) {
      throw new UsageError(subcommand === undefined ? `dead-letter needs a subcommand: ${SUBCOMMANDS.join(', ')}` : `unknown dead-letter subcommand '${subcommand}' (known: ${SUBCOMMANDS.join(', ')})`, 'dead-letter')
    }
    const dirValue = str(values.dir)
    if (dirValue === undefined || dirValue === '') throw new UsageError('--dir DIR is required (the writeBehind.dir of the cache)', 'dead-letter')
    const dir = resolve(dirValue)
    if (subcommand === 'show') return show(dir, globals.namespaceGiven ? globals.namespace : undefined, globals.json)
    if (!globals.namespaceGiven) throw new UsageError('dead-letter replay needs --namespace NS: it replays only the keys of that namespace', 'dead-letter')
    return replay(dir, globals.namespace, globals, await loadKeys(values, process.env))
  },
}
