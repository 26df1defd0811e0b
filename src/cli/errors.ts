import { printable } from './output.js'

/** A mistake in how the command was called: exit code 2, with a short usage line. */
export class UsageError extends Error {
  /** The command whose usage line to print (undefined = the top-level usage). */
  readonly command: string | undefined
  constructor(message: string, command?: string) {
    super(printable(message))
    this.name = 'UsageError'
    this.command = command
  }
}

/** The operation failed (Redis unreachable, bad input data, ...): exit code 1, one line on stderr. */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CliError'
  }
}

/** The message of anything thrown, on one line, control characters escaped (messages can quote outside data). */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err)
  return printable(msg.replace(/\s*\n\s*/g, ' ').trim())
}
