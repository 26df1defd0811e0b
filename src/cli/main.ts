#!/usr/bin/env node
/**
 * `nearcache`: the operator command. One file per command under ./commands/.
 *
 *   nearcache status | invalidate | warm | backup | restore | stats | events tail | bench  [--redis URL | --cluster HOST:PORT,...] [--namespace NS] [--json]
 *
 * Exit codes: 0 ok, 1 the operation failed, 2 usage error. Data on stdout,
 * messages on stderr; failures are one line, never a stack trace (set
 * NEARCACHE_DEBUG=1 to see one).
 */
import { CacheError } from '../errors.js'
import { GLOBAL_HELP, parseOptions, resolveGlobals, splitCommand, wantsHelp } from './args.js'
import { audited } from './audit_flag.js'
import type { Command } from './command.js'
import { acl } from './commands/acl.js'
import { backup } from './commands/backup.js'
import { bench } from './commands/bench.js'
import { events } from './commands/events.js'
import { deadLetter } from './commands/dead_letter.js'
import { invalidate } from './commands/invalidate.js'
import { rekey } from './commands/rekey.js'
import { restore } from './commands/restore.js'
import { stats } from './commands/stats.js'
import { status } from './commands/status.js'
import { warm } from './commands/warm.js'
import { CliError, oneLine, UsageError } from './errors.js'
import { note, out } from './output.js'
import { packageVersion } from './version.js'

export const COMMANDS: Command[] = [status, invalidate, warm, backup, restore, stats, events, bench, deadLetter, rekey, acl]

function find(name: string | undefined): Command | undefined {
  return COMMANDS.find((c) => c.name === name)
}

export function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return `Usage: nearcache <command> [options]

Operator tools for nearcache over Redis or Redis Cluster.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

${GLOBAL_HELP}

Run 'nearcache <command> --help' for a command's options.
Exit codes: 0 ok, 1 the operation failed, 2 usage error.`
}

export function commandHelp(c: Command): string {
  return `Usage: nearcache ${c.usage}\n\n${c.summary}.\n\n${c.help}\n\n${GLOBAL_HELP}`
}

function usageLine(command: string | undefined): string {
  const c = find(command)
  return c
    ? `usage: nearcache ${c.usage}\nRun 'nearcache ${c.name} --help' for more.`
    : `usage: nearcache <${COMMANDS.map((x) => x.name).join('|')}> [options]\nRun 'nearcache --help' for more.`
}

/** Runs the command line; answers the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { command, rest } = splitCommand(argv)
  if (command === 'help') {
    const topic = splitCommand(rest).command
    const c = find(topic)
    if (topic !== undefined && !c) throw new UsageError(`unknown command '${topic}'`)
    await out(c ? commandHelp(c) : topHelp())
    return 0
  }
  const cmd = find(command)
  if (command !== undefined && !cmd) throw new UsageError(`unknown command '${command}'`)
  if (wantsHelp(argv)) {
    await out(cmd ? commandHelp(cmd) : topHelp())
    return 0
  }
  // A subcommand ('events tail') is the next word that is not an option.
  const sub = cmd?.subcommands ? splitCommand(rest) : { command: undefined, rest }
  const values = parseOptions(sub.rest, cmd?.options ?? {}, cmd?.name)
  if (values.version === true) {
    await out(packageVersion())
    return 0
  }
  if (!cmd) {
    note(topHelp())
    return 2
  }
  const globals = resolveGlobals(values, process.env, cmd.name, cmd.offline === true)
  const run = () => cmd.run({ globals, values, ...(sub.command !== undefined ? { subcommand: sub.command } : {}) })
  return cmd.audited ? audited(values, cmd.name, globals.namespace, run) : run()
}

/** A failure as the one line the user sees, and its exit code. */
export function describeFailure(err: unknown): { message: string; code: number } {
  if (err instanceof UsageError) return { message: `nearcache: ${err.message}\n${usageLine(err.command)}`, code: 2 }
  if (err instanceof CliError) return { message: `nearcache: ${oneLine(err)}`, code: 1 }
  if (err instanceof CacheError && (err.code === 'E_INVALID_KEY' || err.code === 'E_INVALID_OPTION')) {
    return { message: `nearcache: ${oneLine(err)}`, code: 2 }
  }
  if (err instanceof CacheError) return { message: `nearcache: ${oneLine(err)} [${err.code}]`, code: 1 }
  const e = err as NodeJS.ErrnoException
  if (e?.code === 'EPIPE') return { message: '', code: 1 }
  return { message: `nearcache: ${oneLine(err)}`, code: 1 }
}

async function run(): Promise<void> {
  // A closed stdout (`nearcache backup | head`) ends the run quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(1)
  })
  let code: number
  try {
    code = await main(process.argv.slice(2))
  } catch (err) {
    const f = describeFailure(err)
    if (process.env.NEARCACHE_DEBUG && err instanceof Error) note(err.stack ?? String(err))
    if (f.message) note(f.message)
    code = f.code
  }
  // Everything is written and every connection closed; ioredis may still hold timers
  // (its disconnect() arms a 2 s one), which must not keep a finished command alive.
  await new Promise((resolve) => process.stdout.write('', resolve))
  await new Promise((resolve) => process.stderr.write('', resolve))
  process.exit(code)
}

await run()
