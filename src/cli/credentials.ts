/**
 * How the CLI authenticates and encrypts its connection: TLS (`--tls`,
 * `--tls-ca`, `--tls-cert`, `--tls-key`, or a rediss:// URL), an ACL user
 * (`--user`, or the URL's user) and a password (`--password-file`, else
 * NEARCACHE_REDIS_PASSWORD, else the URL's). There is no `--password`: a
 * command line is visible to every user of the machine (`ps`).
 *
 * Secrets (the password, the client key) are kept in {@link Secret}s, which
 * print, inspect and serialise as `***`; only connect.ts reveals them, to ioredis.
 */
import { closeSync } from 'node:fs'
import { inspect } from 'node:util'
import { CliError, oneLine, UsageError } from './errors.js'
import { openRegular, readBounded } from './read_file.js'

export const PASSWORD_ENV = 'NEARCACHE_REDIS_PASSWORD'
/** Longest password file read (a password is short; anything longer is the wrong file). */
const MAX_PASSWORD_BYTES = 4096
/** Longest CA bundle, certificate or key file read. */
const MAX_PEM_BYTES = 1 << 20

/** A value that never shows: String(), JSON and util.inspect all give `***`. */
export class Secret<T = string> {
  readonly #value: T
  constructor(value: T) {
    this.#value = value
  }
  reveal(): T {
    return this.#value
  }
  toString(): string {
    return '***'
  }
  toJSON(): string {
    return '***'
  }
  [inspect.custom](): string {
    return 'Secret(***)'
  }
}

export interface TlsMaterial {
  /** The CA bundle to trust instead of Node's default CAs (PEM). */
  ca?: Buffer
  /** The client certificate (PEM), with its key, for mutual TLS. */
  cert?: Buffer
  key?: Secret<Buffer>
}

export interface Credentials {
  /** TLS settings; undefined for a plain connection. */
  tls: TlsMaterial | undefined
  username: string | undefined
  password: Secret | undefined
}

/** The flags that shape the connection, as parsed. */
export interface CredentialFlags {
  tls: boolean
  tlsCa: string | undefined
  tlsCert: string | undefined
  tlsKey: string | undefined
  user: string | undefined
  passwordFile: string | undefined
}

/** User and password from a redis:// URL's userinfo (percent-decoded), and the URL without them. */
export function splitUrlCredentials(url: string): { url: string; username: string | undefined; password: string | undefined } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return { url, username: undefined, password: undefined }
  }
  const username = decode(parsed.username)
  const password = decode(parsed.password)
  if (username === undefined && password === undefined) return { url, username, password }
  parsed.username = ''
  parsed.password = ''
  return { url: parsed.toString(), username, password }
}

function decode(s: string): string | undefined {
  if (s === '') return undefined
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/**
 * The connection's credentials from the flags, the environment and the URL's
 * userinfo (undefined for a Cluster). Reads the files named: a missing or
 * unreadable file is a CliError; contradictory flags are UsageErrors.
 */
export function resolveCredentials(
  flags: CredentialFlags,
  env: NodeJS.ProcessEnv,
  url: { username: string | undefined; password: string | undefined; tls: boolean } | undefined,
  command: string | undefined,
): Credentials {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError('--tls-cert and --tls-key go together (the client certificate and its private key)', command)
  }
  for (const [name, value] of [['--tls-ca', flags.tlsCa], ['--tls-cert', flags.tlsCert], ['--tls-key', flags.tlsKey], ['--password-file', flags.passwordFile]] as const) {
    if (value === '') throw new UsageError(`${name} needs a file name`, command)
  }
  const useTls = flags.tls || url?.tls === true || flags.tlsCa !== undefined || flags.tlsCert !== undefined
  const tls: TlsMaterial | undefined = useTls
    ? {
        ...(flags.tlsCa !== undefined ? { ca: readPem(flags.tlsCa, '--tls-ca') } : {}),
        ...(flags.tlsCert !== undefined ? { cert: readPem(flags.tlsCert, '--tls-cert') } : {}),
        ...(flags.tlsKey !== undefined ? { key: new Secret(readPem(flags.tlsKey, '--tls-key')) } : {}),
      }
    : undefined

  if (flags.user !== undefined && !/^[\x21-\x7e]{1,256}$/.test(flags.user)) {
    throw new UsageError('--user takes an ACL user name: 1 to 256 printable characters, no spaces', command)
  }
  if (flags.user !== undefined && url?.username !== undefined && url.username !== flags.user) {
    throw new UsageError('the --redis URL names one user and --user another: give one', command)
  }
  const username = flags.user ?? url?.username

  const envPassword = env[PASSWORD_ENV]
  let password: Secret | undefined
  if (flags.passwordFile !== undefined) password = new Secret(readPasswordFile(flags.passwordFile))
  else if (envPassword !== undefined && envPassword !== '') password = new Secret(envPassword)
  if (password !== undefined && url?.password !== undefined) {
    const other = flags.passwordFile !== undefined ? '--password-file' : PASSWORD_ENV
    throw new UsageError(`the --redis URL carries a password and ${other} gives one too: give one`, command)
  }
  if (password === undefined && url?.password !== undefined) password = new Secret(url.password)
  if (username !== undefined && password === undefined) {
    throw new UsageError(`--user needs a password: set ${PASSWORD_ENV} or give --password-file FILE`, command)
  }
  return { tls, username, password }
}

function readPem(path: string, flag: string): Buffer {
  const { fd } = openRegular(path, flag)
  try {
    const data = readBounded(fd, MAX_PEM_BYTES)
    if (data.length > MAX_PEM_BYTES) throw new CliError(`${flag} ${path} is larger than 1 MiB: not a certificate or key file`)
    if (!data.includes('-----BEGIN ')) throw new CliError(`${flag} ${path} holds no PEM block (-----BEGIN ...)`)
    return data
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`cannot read ${flag} ${path}: ${oneLine(err)}`, { cause: err })
  } finally {
    closeSync(fd)
  }
}

/**
 * The password in `path`: the file must be a regular file that neither group
 * nor others can read or write (chmod 600); one trailing newline is stripped.
 * The message never quotes the file's contents.
 */
export function readPasswordFile(path: string): string {
  const { fd, mode } = openRegular(path, '--password-file')
  try {
    if ((mode & 0o066) !== 0) {
      throw new CliError(
        `refusing --password-file ${path}: group or others can read or write it (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`,
      )
    }
    const data = readBounded(fd, MAX_PASSWORD_BYTES)
    if (data.length > MAX_PASSWORD_BYTES) throw new CliError(`--password-file ${path} is longer than ${MAX_PASSWORD_BYTES} bytes: not a password file`)
    const text = data.toString('utf8').replace(/\r?\n$/, '')
    if (text === '') throw new CliError(`--password-file ${path} is empty`)
    if (/[\r\n]/.test(text)) throw new CliError(`--password-file ${path} holds more than one line: the password is the whole file, less one trailing newline`)
    return text
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`cannot read --password-file ${path}: ${oneLine(err)}`, { cause: err })
  } finally {
    closeSync(fd)
  }
}
