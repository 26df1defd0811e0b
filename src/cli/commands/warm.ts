import { CacheError } from '../../errors.js'
import { bounded } from '../bounded.js'
import { parseDuration } from '../../util/units.js'
import { intOption, str } from '../args.js'
import type { Command } from '../command.js'
import { closeCache, openCache } from '../connect.js'
import { KEYS_HELP, KEYS_OPTIONS, loadKeys } from '../keys.js'
import { oneLine, UsageError } from '../errors.js'
import { openLines } from '../lines.js'
import { out, outJson, plural, ProblemLog, seconds } from '../output.js'
import { Progress } from '../progress.js'

const FIELDS = new Set(['key', 'value', 'ttl', 'tags'])

/** A CacheError that means "this entry is wrong" rather than "Redis failed". */
const INPUT_ERRORS = new Set(['E_INVALID_KEY', 'E_INVALID_VALUE', 'E_VALUE_TOO_LARGE', 'E_INVALID_OPTION'])

interface Entry {
  key: string
  value: unknown
  ttl: number | string | undefined
  tags: string[] | undefined
}

/** One line of the warm file, or the reason it is not valid. */
export function parseWarmLine(text: string): Entry | string {
  let obj: unknown
  try {
    obj = JSON.parse(text)
  } catch (err) {
    return `not valid JSON (${oneLine(err)})`
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return 'expected an object {"key": ..., "value": ...}'
  const o = obj as Record<string, unknown>
  const unknown = Object.keys(o).filter((k) => !FIELDS.has(k))
  if (unknown.length > 0) return `unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: key, value, ttl, tags)`
  if (typeof o.key !== 'string' || o.key === '') return '"key" must be a non-empty string'
  if (!('value' in o)) return 'missing "value"'
  if (o.ttl !== undefined) {
    if (typeof o.ttl !== 'number' && typeof o.ttl !== 'string') return '"ttl" must be milliseconds or a duration like "10m"'
    try {
      parseDuration(o.ttl, 'ttl')
    } catch {
      return `"ttl" must be a positive number of milliseconds or a duration like "500ms", "10s", "5m", "1h", "1d" (got ${JSON.stringify(o.ttl)})`
    }
  }
  if (o.tags !== undefined && (!Array.isArray(o.tags) || o.tags.some((t) => typeof t !== 'string' || t === ''))) {
    return '"tags" must be an array of non-empty strings'
  }
  return { key: o.key, value: o.value, ttl: o.ttl as number | string | undefined, tags: o.tags as string[] | undefined }
}

export const warm: Command = {
  name: 'warm',
  summary: 'Load entries from a JSON-lines file',
  usage: 'warm --from FILE [--concurrency N] [--ttl DURATION] [--keys-file FILE] [--namespace NS]',
  help: `Loads entries with cache.set, N at a time. Each line of FILE ('-' = stdin) is
  {"key": "product:1", "value": <any JSON>, "ttl"?: "10m" | <ms>, "tags"?: ["products"]}
Blank lines are skipped. Invalid lines are reported with their line numbers and
make the exit code 1; the valid lines are loaded anyway.

Options:
  --from FILE         The JSON-lines file to load (required; '-' reads stdin)
  --concurrency N     Writes in flight at once (default 16)
  --ttl DURATION      TTL for lines without one: ms, or '500ms', '10s', '5m', '1h', '1d'
                      (default: none, or the entry's own)
${KEYS_HELP}

Progress goes to stderr (a bar on a terminal); the summary to stdout.`,
  options: {
    from: { type: 'string' },
    concurrency: { type: 'string' },
    ttl: { type: 'string' },
    ...KEYS_OPTIONS,
  },
  async run({ globals, values }) {
    const from = str(values.from)
    if (from === undefined || from === '') throw new UsageError('warm needs --from FILE', 'warm')
    const concurrency = intOption(values.concurrency, 'concurrency', 16, 1, 10_000, 'warm')
    let defaultTtl: number | undefined
    const ttlArg = str(values.ttl)
    if (ttlArg !== undefined) {
      try {
        defaultTtl = parseDuration(ttlArg, 'ttl') // a bare number is milliseconds
      } catch {
        throw new UsageError(`--ttl takes milliseconds or a duration like 500ms, 10s, 5m, 1h, 1d (got ${JSON.stringify(ttlArg)})`, 'warm')
      }
    }
    const keys = await loadKeys(values, process.env)
    const source = await openLines(from, 'warm')
    const opened = await openCache(globals.target, globals.namespace, keys?.option())
    const started = performance.now()
    let lines = 0
    let loaded = 0
    let progress: Progress | undefined
    const invalid = new ProblemLog('warm', 50, () => progress?.clear())
    const failed = new ProblemLog('warm', 50, () => progress?.clear())
    progress = new Progress('warm', () => ({
      done: loaded,
      failed: failed.count + invalid.count,
      fraction: source.size ? source.consumed / source.size : undefined,
    }))
    try {
      const { cache } = opened
      const tasks = bounded(concurrency)
      const load = async (no: number, e: Entry) => {
        try {
          await cache.set(e.key, e.value, { ttl: e.ttl ?? defaultTtl, tags: e.tags })
          loaded++
        } catch (err) {
          if (err instanceof CacheError && INPUT_ERRORS.has(err.code)) invalid.add(no, oneLine(err))
          else failed.add(no, `not loaded: ${oneLine(err)}`)
        }
      }
      for await (const { no, text } of source.lines()) {
        if (text.trim() === '') continue
        lines++
        const entry = parseWarmLine(text)
        if (typeof entry === 'string') {
          invalid.add(no, entry)
          continue
        }
        await tasks.add(() => load(no, entry))
      }
      await tasks.drain()
    } finally {
      progress.stop()
      await closeCache(opened)
    }
    invalid.finish()
    failed.finish()
    const result = {
      namespace: globals.namespace,
      source: source.name,
      lines,
      loaded,
      invalid: invalid.count,
      failed: failed.count,
      errors: [...invalid.kept, ...failed.kept].sort((a, b) => a.line - b.line),
      ms: Math.round(performance.now() - started),
    }
    if (globals.json) await outJson(result)
    else {
      const problems = [plural(result.invalid, 'invalid line'), `${result.failed} failed`].join(', ')
      await out(
        `warm: loaded ${plural(loaded, 'entry', 'entries')} of ${plural(lines, 'line')} into namespace '${globals.namespace}' ` +
          `on ${globals.target.label} in ${seconds(result.ms)}; ${problems}`,
      )
    }
    return result.invalid + result.failed > 0 ? 1 : 0
  },
}
