import { strings } from '../args.js'
import type { Command } from '../command.js'
import { closeCache, openCache } from '../connect.js'
import { AUDIT_HELP, AUDIT_OPTIONS } from '../audit_flag.js'
import { KEYS_HELP, KEYS_OPTIONS, loadKeys } from '../keys.js'
import { UsageError } from '../errors.js'
import { out, outJson, plural, quoted } from '../output.js'

export const invalidate: Command = {
  name: 'invalidate',
  audited: true,
  summary: 'Invalidate entries by tag, key prefix or key',
  usage: 'invalidate (--tag T | --prefix P | --key K)... [--keys-file FILE] [--namespace NS]',
  help: `Invalidates entries of one namespace through the library's own calls, so the
effect is exactly what cache.invalidateTags / invalidatePrefix / deleteMany do:
  --tag T      Every entry carrying tag T reads as missing (one INCR per tag).
  --prefix P   Removes the keys of the namespace that start with P (SCAN + UNLINK on
               every master); counts the stored keys removed.
  --key K      Deletes the key; counts the live entries removed.
Each option can be repeated and they can be combined (keys, then prefixes, then tags).
Running processes whose cache has encryption keys only act on signed announcements:
give this command the same keys.
${KEYS_HELP}
${AUDIT_HELP}

Example:
  nearcache invalidate --namespace shop --tag products --key product:1 --prefix user:`,
  options: {
    tag: { type: 'string', multiple: true },
    prefix: { type: 'string', multiple: true },
    key: { type: 'string', multiple: true },
    ...KEYS_OPTIONS, ...AUDIT_OPTIONS,
  },
  async run({ globals, values }) {
    const tags = strings(values.tag)
    const prefixes = strings(values.prefix)
    const keys = strings(values.key)
    if (tags.length + prefixes.length + keys.length === 0) {
      throw new UsageError('say what to invalidate: --tag T, --prefix P or --key K', 'invalidate')
    }
    for (const [name, list] of [['tag', tags], ['prefix', prefixes], ['key', keys]] as const) {
      if (list.some((v) => v === '')) {
        const hint = name === 'prefix' ? ' (an empty prefix would remove the whole namespace)' : ''
        throw new UsageError(`--${name} takes a non-empty value${hint}`, 'invalidate')
      }
    }
    const secrets = await loadKeys(values, process.env)
    const opened = await openCache(globals.target, globals.namespace, secrets?.option())
    try {
      const { cache } = opened
      const result = {
        namespace: globals.namespace,
        keys: { requested: [...new Set(keys)].length, deleted: 0 },
        prefixes: [] as { prefix: string; removed: number }[],
        tags: [...new Set(tags)],
      }
      if (keys.length > 0) result.keys.deleted = await cache.deleteMany(keys)
      for (const prefix of new Set(prefixes)) {
        result.prefixes.push({ prefix, removed: await cache.invalidatePrefix(prefix) })
      }
      if (tags.length > 0) await cache.invalidateTags(result.tags)

      if (globals.json) {
        await outJson(result)
        return 0
      }
      const lines: string[] = []
      if (keys.length > 0) {
        const { requested, deleted } = result.keys
        const rest = requested - deleted
        lines.push(`keys: deleted ${deleted} of ${requested}${rest > 0 ? ` (${rest} missing, expired or already invalidated)` : ''}`)
      }
      for (const p of result.prefixes) lines.push(`prefix ${quoted(p.prefix)}: removed ${plural(p.removed, 'key')}`)
      if (result.tags.length > 0) {
        lines.push(`tags: invalidated ${plural(result.tags.length, 'tag')} (${result.tags.map(quoted).join(', ')})`)
      }
      await out(`namespace '${globals.namespace}' on ${globals.target.label}\n  ${lines.join('\n  ')}`)
      return 0
    } finally {
      await closeCache(opened)
    }
  },
}
