import type { GlobalOptions, OptionSpecs, OptionValues } from './args.js'

export interface CommandContext {
  globals: GlobalOptions
  /** This command's options (and the global ones), parsed. */
  values: OptionValues
  /** The word after the command name, for commands with `subcommands` ('tail' in 'events tail'). */
  subcommand?: string
}

export interface Command {
  name: string
  /** One line for the top-level help. */
  summary: string
  /** The usage line, without the leading 'nearcache '. */
  usage: string
  /** The rest of `--help`: what it does, its options, examples. */
  help: string
  options: OptionSpecs
  /**
   * The command connects to nothing (`acl`): the connection and credential flags
   * are not read, so its own options may reuse their names (`acl --user NAME`).
   */
  offline?: true
  /** An admin command: takes `--audit-file FILE` and records each run there (src/cli/audit_flag.ts). */
  audited?: true
  /** Words the command takes right after its name ('events tail'); others are usage errors. */
  subcommands?: string[]
  /** Answers the exit code (0 ok, 1 failed). Throws UsageError / CliError for the others. */
  run(ctx: CommandContext): Promise<number>
}
