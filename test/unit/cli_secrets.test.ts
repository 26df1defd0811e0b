import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import util from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GLOBAL_OPTIONS, parseOptions, redactUrl, resolveGlobals, splitCommand } from '../../src/cli/args.js'
import type { GlobalOptions } from '../../src/cli/args.js'
import { readPasswordFile, Secret, splitUrlCredentials } from '../../src/cli/credentials.js'
import { CliError, UsageError } from '../../src/cli/errors.js'
import { hint, sanitizeRedisError } from '../../src/l2/errors.js'

/** The CLI's connection flags (TLS, user, password sources) and the rules that keep secrets out of sight. */

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
const SECRET = 'S3cr3t-Pw-e41b'

let dir: string
const file = (name: string, content: string, mode = 0o600): string => {
  const p = path.join(dir, name)
  writeFileSync(p, content)
  chmodSync(p, mode)
  return p
}

function globals(argv: string[], env: NodeJS.ProcessEnv = {}): GlobalOptions {
  return resolveGlobals(parseOptions(argv, {}, 'status'), env, 'status')
}

function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}

/** Everything a value shows: inspect (hidden fields too), JSON, String. */
function shown(v: unknown): string {
  return [util.inspect(v, { depth: 10, showHidden: true }), JSON.stringify(v), String(v)].join('\n')
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'nearcache-cli-secrets-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('redactUrl', () => {
  it.each([
    ['redis://u:pw@h:1', 'redis://u:***@h:1'],
    ['rediss://:pw@h:1/2', 'rediss://:***@h:1/2'],
    ['redis://u:p@ss/w:rd@h:1', 'redis://u:***@h:1'],
    ['u:pw@h:1', 'u:***@h:1'],
    ['redis://h:1', 'redis://h:1'],
    ['redis://user@h:1', 'redis://user@h:1'],
  ])('%s -> %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted)
  })
})

describe('connection flags', () => {
  it('are global options that take values where they should (the command is found after them)', () => {
    for (const f of ['tls-ca', 'tls-cert', 'tls-key', 'user', 'password-file']) expect(GLOBAL_OPTIONS[f]?.type).toBe('string')
    expect(GLOBAL_OPTIONS.tls?.type).toBe('boolean')
    expect(GLOBAL_OPTIONS.password).toBeUndefined()
    expect(splitCommand(['--tls-ca', 'status', 'stats']).command).toBe('stats')
    expect(thrown(() => parseOptions(['--password', 'x'], {}, 'status'))).toBeInstanceOf(UsageError)
  })

  it('a plain URL without flags: no TLS, no user, no password', () => {
    const t = globals(['--redis', 'redis://127.0.0.1:7000']).target
    expect(t.credentials).toEqual({ tls: undefined, username: undefined, password: undefined })
  })

  it('rediss://, --tls and any --tls-* option turn TLS on; the files are read', () => {
    const ca = file('ca.pem', PEM)
    const cert = file('cert.pem', PEM)
    const key = file('key.pem', PEM.replace(/CERTIFICATE/g, 'PRIVATE KEY'))
    expect(globals(['--redis', 'rediss://h:1']).target.credentials.tls).toEqual({})
    expect(globals(['--redis', 'redis://h:1', '--tls']).target.credentials.tls).toEqual({})
    expect(globals(['--redis', 'redis://h:1', '--tls-ca', ca]).target.credentials.tls?.ca?.toString()).toBe(PEM)
    const m = globals(['--cluster', 'h:1,h:2', '--tls-cert', cert, '--tls-key', key]).target
    expect(m.kind).toBe('cluster')
    expect(m.credentials.tls?.cert?.toString()).toBe(PEM)
    expect(m.credentials.tls?.key).toBeInstanceOf(Secret)
    expect(m.credentials.tls?.key?.reveal().toString()).toMatch(/PRIVATE KEY/)
  })

  it('--tls-cert without --tls-key (or the reverse) is a usage error; a missing or non-PEM file is a CliError naming the flag', () => {
    const cert = file('c2.pem', PEM)
    expect(thrown(() => globals(['--tls-cert', cert]))).toBeInstanceOf(UsageError)
    expect(thrown(() => globals(['--tls-key', cert]))).toBeInstanceOf(UsageError)
    const missing = thrown(() => globals(['--tls-ca', path.join(dir, 'nope.pem')]))
    expect(missing).toBeInstanceOf(CliError)
    expect(missing.message).toMatch(/^cannot read --tls-ca .*nope\.pem: .*ENOENT/)
    const notPem = thrown(() => globals(['--tls-ca', file('junk.txt', 'hello')]))
    expect(notPem).toBeInstanceOf(CliError)
    expect(notPem.message).toMatch(/holds no PEM block/)
    expect(thrown(() => globals(['--tls-ca', dir])).message).toMatch(/not a regular file/)
  })

  it('password sources: --password-file over NEARCACHE_REDIS_PASSWORD; the URL password; conflicts refused', () => {
    const pw = file('pw', `${SECRET}\n`)
    const env = { NEARCACHE_REDIS_PASSWORD: 'from-env' }
    expect(globals(['--password-file', pw], env).target.credentials.password?.reveal()).toBe(SECRET)
    expect(globals([], env).target.credentials.password?.reveal()).toBe('from-env')
    expect(globals([], { NEARCACHE_REDIS_PASSWORD: '' }).target.credentials.password).toBeUndefined()
    const fromUrl = globals(['--redis', `redis://alice:${encodeURIComponent('p@ss:w/rd')}@h:1`]).target
    expect(fromUrl.credentials.username).toBe('alice')
    expect(fromUrl.credentials.password?.reveal()).toBe('p@ss:w/rd')
    // ioredis gets the URL without its userinfo, and the credentials as options.
    expect(fromUrl.kind === 'standalone' && fromUrl.url).toBe('redis://h:1')
    expect(fromUrl.label).toBe('redis://alice:***@h:1')
    expect(thrown(() => globals(['--redis', 'redis://:x@h:1'], env))).toBeInstanceOf(UsageError)
    expect(thrown(() => globals(['--redis', 'redis://:x@h:1', '--password-file', pw]))).toBeInstanceOf(UsageError)
    expect(thrown(() => globals(['--redis', 'redis://bob:x@h:1', '--user', 'alice']))).toBeInstanceOf(UsageError)
    expect(globals(['--redis', 'redis://alice:x@h:1', '--user', 'alice']).target.credentials.username).toBe('alice')
  })

  it('--user needs a password and a plausible name', () => {
    expect(thrown(() => globals(['--user', 'alice'])).message).toMatch(/--user needs a password: set NEARCACHE_REDIS_PASSWORD or give --password-file/)
    expect(thrown(() => globals(['--user', 'al ice'], { NEARCACHE_REDIS_PASSWORD: 'x' }))).toBeInstanceOf(UsageError)
    expect(thrown(() => globals(['--user', ''], { NEARCACHE_REDIS_PASSWORD: 'x' }))).toBeInstanceOf(UsageError)
    const t = globals(['--cluster', 'h:1', '--user', 'alice'], { NEARCACHE_REDIS_PASSWORD: SECRET }).target
    expect(t.credentials.username).toBe('alice')
    expect(t.credentials.password?.reveal()).toBe(SECRET)
  })

  it('a URL that is refused is quoted with its password masked', () => {
    const err = thrown(() => globals(['--redis', `redis://u:${SECRET} x@h:1`]))
    expect(err).toBeInstanceOf(UsageError)
    expect(err.message).toContain('u:***@h:1')
    expect(err.message).not.toContain(SECRET)
  })

  it('the resolved globals show no secret when printed, inspected or serialised', () => {
    const key = file('key2.pem', `-----BEGIN PRIVATE KEY-----\n${SECRET}\n-----END PRIVATE KEY-----\n`)
    const cert = file('cert2.pem', PEM)
    for (const g of [
      globals(['--redis', `rediss://u:${SECRET}@h:1`, '--tls-cert', cert, '--tls-key', key]),
      globals(['--cluster', 'h:1', '--user', 'u'], { NEARCACHE_REDIS_PASSWORD: SECRET }),
      globals(['--password-file', file('pw2', SECRET)]),
    ]) {
      expect(shown(g)).not.toContain(SECRET)
      expect(shown(g.target.credentials.password)).toMatch(/\*\*\*/)
    }
  })
})

describe('readPasswordFile', () => {
  it('strips one trailing newline (LF or CRLF), no more', () => {
    expect(readPasswordFile(file('a', 'pw\n'))).toBe('pw')
    expect(readPasswordFile(file('b', 'pw\r\n'))).toBe('pw')
    expect(readPasswordFile(file('c', 'pw'))).toBe('pw')
    expect(readPasswordFile(file('d', ' pw \n'))).toBe(' pw ')
  })

  it.each([0o640, 0o604, 0o620, 0o602, 0o644, 0o666])('refuses mode %s and says so', (mode) => {
    const err = thrown(() => readPasswordFile(file(`m${mode}`, `${SECRET}\n`, mode)))
    expect(err).toBeInstanceOf(CliError)
    expect(err.message).toMatch(/group or others can read or write it \(mode 0\d{3}\); chmod 600 it/)
    expect(err.message).not.toContain(SECRET)
  })

  it('accepts 0400 and 0600; refuses empty, multi-line, oversized, missing files without quoting them', () => {
    expect(readPasswordFile(file('ro', 'pw\n', 0o400))).toBe('pw')
    for (const [name, content, why] of [
      ['empty', '\n', /is empty/],
      ['lines', `${SECRET}\nsecond\n`, /more than one line/],
      ['big', 'x'.repeat(5000), /longer than 4096 bytes/],
    ] as const) {
      const err = thrown(() => readPasswordFile(file(name, content)))
      expect(err).toBeInstanceOf(CliError)
      expect(err.message).toMatch(why)
      expect(err.message).not.toContain(SECRET)
    }
    expect(thrown(() => readPasswordFile(path.join(dir, 'none'))).message).toMatch(/cannot read --password-file .*ENOENT/)
  })
})

describe('Secret and URL credentials', () => {
  it('a Secret never shows its value', () => {
    const s = new Secret(SECRET)
    expect(shown(s)).not.toContain(SECRET)
    expect(`${s}`).toBe('***')
    expect(s.reveal()).toBe(SECRET)
  })

  it('splitUrlCredentials decodes the userinfo and removes it', () => {
    expect(splitUrlCredentials('rediss://a%40b:p%2Fw@h:6380/1')).toEqual({ url: 'rediss://h:6380/1', username: 'a@b', password: 'p/w' })
    expect(splitUrlCredentials('redis://h:1')).toEqual({ url: 'redis://h:1', username: undefined, password: undefined })
  })
})

describe('TLS hints', () => {
  const err = (code: string, message: string) => Object.assign(new Error(message), { code })

  it('OpenSSL error lines are cut to their reason', () => {
    const e = sanitizeRedisError(err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      '80BC2217E17F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n'))
    expect(e.message).toBe('tlsv13 alert certificate required (SSL alert number 116)')
    expect(hint(e)).toMatch(/requires a client certificate \(mutual TLS, tls-auth-clients yes\): give tls\.cert and tls\.key/)
  })

  it('each rejection has its own cause', () => {
    expect(hint(err('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"))).toMatch(/hostname\/IP mismatch/)
    expect(hint(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'))).toMatch(/not trusted.*\(tls\.ca\)/)
    expect(hint(err('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'))).toMatch(/not trusted/)
    expect(hint(err('CERT_HAS_EXPIRED', 'certificate has expired'))).toMatch(/expired/)
    expect(hint(err('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'))).toMatch(/TLS enabled on that port/)
    const reset = err('ECONNRESET', 'read ECONNRESET')
    expect(hint(reset, { tls: true, clientCert: false })).toMatch(/probably requires one/)
    expect(hint(reset, { tls: true, clientCert: true })).toMatch(/did not accept this one/)
    expect(hint(reset, { tls: false, clientCert: false })).toMatch(/accepts only TLS/)
    expect(hint(err('', 'Connection is closed.'), { tls: false, clientCert: false })).toMatch(/accepts only TLS/)
    expect(hint(err('', 'Connection is closed.'), { tls: true, clientCert: false })).toBe('')
    expect(hint(reset)).toBe('')
    expect(hint(err('ECONNREFUSED', 'connect ECONNREFUSED'), { tls: true, clientCert: false })).toBe('')
  })
})
