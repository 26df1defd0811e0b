import { auditCommand } from '../access/audit_cli.js'
import { CacheError } from '../errors.js'
import type { OptionSpecs, OptionValues } from './args.js'
import { CliError, UsageError } from './errors.js'

/**
 * `--audit-file FILE` of the CLI's admin commands (`invalidate`, `restore`,
 * `rekey`): they run outside any cache, so they cannot reach a cache's `audit`
 * sink; with the flag each run appends one record (principal 'cli') to FILE in the
 * cache's audit format and file rules (0600, 0700 directory, rotation), whatever
 * its outcome.
 */
export const AUDIT_OPTIONS: OptionSpecs = { 'audit-file': { type: 'string' } }
export const AUDIT_HELP = `  --audit-file FILE   Append a record of this run (principal 'cli', outcome, duration)
                      to the audit log FILE (JSON lines, 0600, as the audit option writes)`

/** The outcome an audit record gives a run: 'ok', or the error's code. */
function outcome(code: number | undefined, err: unknown): string {
  if (err === undefined) return code === 0 ? 'ok' : 'E_FAILED'
  if (err instanceof CacheError) return err.code
  if (err instanceof UsageError) return 'E_USAGE'
  if (err instanceof CliError) return 'E_FAILED'
  return 'E_FAILED'
}

/** Runs `run` and, when `--audit-file` was given, records it; an audit file that cannot be written fails the command. */
export async function audited(values: OptionValues, operation: string, namespace: string, run: () => Promise<number>): Promise<number> {
  const file = values['audit-file']
  if (typeof file !== 'string') return run()
  if (file === '') throw new UsageError('--audit-file takes a file path', operation)
  const startedAt = Date.now()
  const t = performance.now()
  let code: number | undefined
  let failure: unknown
  try {
    code = await run()
    return code
  } catch (err) {
    failure = err
    throw err
  } finally {
    const record = { operation, namespace, outcome: outcome(code, failure), startedAt, durationMs: Math.round((performance.now() - t) * 1000) / 1000 }
    await auditCommand(file, record).catch((err: unknown) => {
      // The run's own failure, if any, stays the one reported; a lost audit record is never silent.
      if (failure === undefined) throw new CliError(`could not write the audit record to ${file} (${err instanceof Error ? err.message : String(err)})`, { cause: err })
    })
  }
}
