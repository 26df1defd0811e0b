import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { validateNamespace } from '../options/options.js'
import { PASSWORD_ENV, resolveCredentials, splitUrlCredentials } from './credentials.js'
import type { Credentials } from './credentials.js'
import { UsageError } from './errors.js'

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string]
export type OptionSpecs = Record<string, OptionSpec>
export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>

export const DEFAULT_URL = 'redis://127.0.0.1:6379'
export const DEFAULT_NAMESPACE = 'nc'

/** Options every command accepts, before or after the command name. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  redis: { type: 'string' },
  cluster: { type: 'string' },
  tls: { type: 'boolean' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  user: { type: 'string' },
  'password-file': { type: 'string' },
  namespace: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
}

export const GLOBAL_HELP = `Global options:
  --redis URL                 Redis server (default $NEARCACHE_REDIS_URL, else ${DEFAULT_URL})
  --cluster HOST:PORT[,...]   Connect to a Redis Cluster through these seed nodes instead
  --tls                       Connect over TLS (implied by rediss:// and the --tls-* options)
  --tls-ca FILE               Trust the CA certificates in FILE (PEM) instead of the system's
  --tls-cert FILE             Client certificate (PEM) for mutual TLS, with --tls-key
  --tls-key FILE              The client certificate's private key (PEM)
  --user NAME                 Log in as this ACL user (needs a password)
  --password-file FILE        Read the password from FILE (mode 600; one trailing newline
                              is dropped); else $${PASSWORD_ENV}, else the URL's.
                              There is no --password: command lines are visible in ps
  --namespace NS              The cache namespace (default '${DEFAULT_NAMESPACE}')
  --json                      Machine-readable output
  -h, --help                  Show help
  --version                   Print the version`

export interface HostPort {
  host: string
  port: number
}

/** Where the command connects. */
export type Target =
  | { kind: 'standalone'; url: string; label: string; credentials: Credentials }
  | { kind: 'cluster'; nodes: HostPort[]; label: string; credentials: Credentials }

export interface GlobalOptions {
  target: Target
  namespace: string
  /** true when --namespace was given (restore checks it against the backup). */
  namespaceGiven: boolean
  json: boolean
}

/**
 * Splits argv into the command name and the rest (global options may come before
 * or after the command). Answers `command: undefined` when there is none.
 */
export function splitCommand(argv: string[]): { command: string | undefined; rest: string[] } {
  const takesValue = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, s]) => s.type === 'string').map(([n]) => `--${n}`))
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--') break
    if (takesValue.has(a)) {
      i++
      continue
    }
    if (!a.startsWith('-')) return { command: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] }
  }
  return { command: undefined, rest: argv }
}

/** True when -h/--help is among the arguments (help wins over every other error). */
export function wantsHelp(argv: string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false
    if (a === '--help' || a === '-h') return true
  }
  return false
}

/** util.parseArgs with the global options added; its errors become usage errors. */
export function parseOptions(args: string[], specs: OptionSpecs, command: string | undefined): OptionValues {
  try {
    const { values } = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...specs }, strict: true, allowPositionals: false })
    return values as OptionValues
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    let msg = e.message
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const m = /'([^']+)'/.exec(msg)
      msg = `unknown option ${m?.[1] ?? ''}`.trim()
    } else if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const m = /'([^']+)'/.exec(msg)
      msg = `unexpected argument ${m ? `'${m[1]}'` : ''}`.trim()
    } else if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const m = /'(--?[^' <]+)/.exec(msg)
      msg = /argument missing/.test(msg) && m ? `${m[1]} needs a value` : msg.split('\n')[0] ?? msg
    }
    throw new UsageError(msg, command)
  }
}

/** The connection target and the other global options, validated. */
export function resolveGlobals(values: OptionValues, env: NodeJS.ProcessEnv, command: string | undefined, offline = false): GlobalOptions {
  const redis = str(values.redis)
  const cluster = str(values.cluster)
  if (redis !== undefined && cluster !== undefined) {
    throw new UsageError('give either --redis or --cluster, not both', command)
  }
  const flags = {
    tls: values.tls === true,
    tlsCa: str(values['tls-ca']),
    tlsCert: str(values['tls-cert']),
    tlsKey: str(values['tls-key']),
    // An offline command's --user is its own (acl --user NAME), not a login.
    user: offline ? undefined : str(values.user),
    passwordFile: offline ? undefined : str(values['password-file']),
  }
  let target: Target
  if (cluster !== undefined) {
    const nodes = parseNodes(cluster, command)
    const credentials = resolveCredentials(flags, env, undefined, command)
    target = { kind: 'cluster', nodes, label: `cluster ${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`, credentials }
  } else {
    const url = redis ?? (env.NEARCACHE_REDIS_URL || DEFAULT_URL)
    if (!/^rediss?:\/\/[^\s]*$/.test(url)) {
      throw new UsageError(`--redis takes a redis:// or rediss:// URL (got ${JSON.stringify(redactUrl(url))})`, command)
    }
    const split = splitUrlCredentials(url)
    const credentials = resolveCredentials(flags, env, { username: split.username, password: split.password, tls: url.startsWith('rediss://') }, command)
    target = { kind: 'standalone', url: split.url, label: redactUrl(url), credentials }
  }
  const nsValue = str(values.namespace)
  let namespace = DEFAULT_NAMESPACE
  if (nsValue !== undefined) {
    try {
      namespace = validateNamespace(nsValue, '--namespace')
    } catch (err) {
      throw new UsageError((err as Error).message.replace(/\.$/, ''), command)
    }
  }
  return { target, namespace, namespaceGiven: nsValue !== undefined, json: values.json === true }
}

function parseNodes(list: string, command: string | undefined): HostPort[] {
  const nodes: HostPort[] = []
  for (const part of list.split(',')) {
    const item = part.trim()
    if (item === '') continue
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(item)
    const port = Number(m?.[2])
    if (!m || port < 1 || port > 65535) {
      throw new UsageError(`--cluster takes host:port[,host:port...] (got ${JSON.stringify(item)})`, command)
    }
    nodes.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port })
  }
  if (nodes.length === 0) throw new UsageError('--cluster needs at least one host:port', command)
  return nodes
}

/**
 * The URL without its password, for messages: everything between the user's
 * colon and the last '@' is masked (a password may itself hold '@', '/' or ':').
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)?(.*)$/is.exec(url)
  const scheme = m?.[1] ?? ''
  const rest = m?.[2] ?? url
  const at = rest.lastIndexOf('@')
  if (at < 0) return url
  const auth = rest.slice(0, at)
  const colon = auth.indexOf(':')
  return colon < 0 ? url : `${scheme}${auth.slice(0, colon)}:***${rest.slice(at)}`
}

export function str(v: OptionValues[string]): string | undefined {
  return typeof v === 'string' ? v : undefined
}

export function strings(v: OptionValues[string]): string[] {
  if (v === undefined) return []
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string')
}

/** A whole number option within [min, max]. */
export function intOption(v: OptionValues[string], name: string, fallback: number, min: number, max: number, command: string): number {
  const s = str(v)
  if (s === undefined) return fallback
  const n = Number(s)
  if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} takes a whole number from ${min} to ${max} (got ${JSON.stringify(s)})`, command)
  }
  return n
}
