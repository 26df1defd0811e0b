import { chmodSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI_TIMEOUT, nearcache, show } from '../helpers/cli_runner.js'
import type { Result } from '../helpers/cli_runner.js'
import { startCluster, startStandalone } from '../helpers/redis_servers.js'
import type { RedisClusterHandle, RedisServerHandle } from '../helpers/redis_servers.js'
import { makeTlsFiles } from '../helpers/tls_certs.js'
import type { TlsFiles } from '../helpers/tls_certs.js'

/**
 * The CLI against real TLS servers: --tls/--tls-ca, mutual TLS (--tls-cert,
 * --tls-key), an ACL user with its password from a file or the environment,
 * and --cluster with TLS and credentials. The password is distinctive, and no
 * output of any run (stdout or stderr, text or --json, success or failure)
 * may contain it.
 */

const PASSWORD = 'Zebra7-pw-4cd19e'
const ADMIN = 'Admin3-pw-77f0aa'
const USER = 'opsuser'
/** An ACL user line for redis-server's command line: all commands, keys and channels. */
const userArgs = (password: string) => ['--user', USER, 'on', `>${password}`, '~*', '&*', '+@all']

function expectNoSecret(r: Result): void {
  for (const secret of [PASSWORD, ADMIN, encodeURIComponent(PASSWORD)]) {
    expect(r.stdout, show(r)).not.toContain(secret)
    expect(r.stderr, show(r)).not.toContain(secret)
  }
}

describe('nearcache over TLS', () => {
  let files: TlsFiles
  let open: RedisServerHandle // TLS only, no client certificates, no password
  let mutual: RedisServerHandle // TLS only, client certificates required
  let secured: RedisServerHandle // TLS only, default user locked by a password, ACL user opsuser
  let cluster: RedisClusterHandle // TLS only, tls-cluster, ACL user opsuser
  let pwFile: string
  let url: (s: RedisServerHandle) => string
  let ca: string[]
  let mtls: string[]

  beforeAll(async () => {
    files = makeTlsFiles()
    ;[open, mutual, secured] = await Promise.all([
      startStandalone({ tls: { files } }),
      startStandalone({ tls: { files, authClients: 'yes' } }),
      startStandalone({ tls: { files }, args: ['--requirepass', ADMIN, ...userArgs(PASSWORD)] }),
    ])
    cluster = await startCluster({ masters: 3, tls: { files }, args: userArgs(PASSWORD) })
    pwFile = path.join(files.dir, 'redis-password')
    writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 })
    url = (s) => `rediss://127.0.0.1:${s.port}`
    ca = ['--tls-ca', files.caCert]
    mtls = [...ca, '--tls-cert', files.client.cert, '--tls-key', files.client.key]
  })
  afterAll(async () => {
    await Promise.all([open?.stop(), mutual?.stop(), secured?.stop(), cluster?.stop()])
    files?.remove()
  }, CLI_TIMEOUT)

  it('status over rediss:// with --tls-ca, and over redis:// with --tls; without the CA the certificate is not trusted', async () => {
    const r = await nearcache(['status', '--redis', url(open), ...ca])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain(`rediss://127.0.0.1:${open.port}`)
    const flag = await nearcache(['status', '--json', '--redis', `redis://127.0.0.1:${open.port}`, '--tls', ...ca])
    expect(flag.code, show(flag)).toBe(0)
    expect(JSON.parse(flag.stdout)).toMatchObject({ mode: 'standalone' })
    const untrusted = await nearcache(['status', '--redis', url(open)])
    expect(untrusted.code, show(untrusted)).toBe(1)
    expect(untrusted.stderr).toMatch(/TLS certificate is not trusted.*\(--tls-ca\)/)
    const plain = await nearcache(['status', '--redis', `redis://127.0.0.1:${open.port}`])
    expect(plain.code, show(plain)).toBe(1)
    expect(plain.stderr).toMatch(/accepts only TLS connections .*add --tls/)
  }, CLI_TIMEOUT)

  it('mutual TLS: --tls-cert and --tls-key connect; without them the server requires a client certificate', async () => {
    const r = await nearcache(['stats', '--json', '--redis', url(mutual), ...mtls])
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ mode: 'standalone' })
    const without = await nearcache(['status', '--redis', url(mutual), ...ca])
    expect(without.code, show(without)).toBe(1)
    expect(without.stderr).toMatch(/requires (a client certificate|one) \(mutual TLS, tls-auth-clients yes\).*--tls-cert and --tls-key/)
  }, CLI_TIMEOUT)

  it('--user with the password from --password-file, NEARCACHE_REDIS_PASSWORD or the URL: status and stats --json; the password shows nowhere', async () => {
    const runs: Result[] = []
    const run = async (args: string[], env?: NodeJS.ProcessEnv) => {
      const r = await nearcache(args, env)
      runs.push(r)
      return r
    }
    const byFile = await run(['status', '--redis', url(secured), ...ca, '--user', USER, '--password-file', pwFile])
    expect(byFile.code, show(byFile)).toBe(0)
    const byEnv = await run(['stats', '--json', '--redis', url(secured), ...ca, '--user', USER], { NEARCACHE_REDIS_PASSWORD: PASSWORD })
    expect(byEnv.code, show(byEnv)).toBe(0)
    expect(JSON.parse(byEnv.stdout)).toMatchObject({ mode: 'standalone' })
    const statusJson = await run(['status', '--json', '--redis', `rediss://${USER}:${PASSWORD}@127.0.0.1:${secured.port}`, ...ca])
    expect(statusJson.code, show(statusJson)).toBe(0)
    expect(JSON.parse(statusJson.stdout).target).toBe(`rediss://${USER}:***@127.0.0.1:${secured.port}`)
    for (const r of runs) expectNoSecret(r)
  }, CLI_TIMEOUT)

  it('a refused password, a missing one, a refused URL password: exit 1, and the password shows nowhere', async () => {
    const runs: Result[] = []
    const run = async (args: string[], env?: NodeJS.ProcessEnv) => {
      const r = await nearcache(args, env)
      runs.push(r)
      return r
    }
    // Refused: the server knows another password for this user (and the default user's is ADMIN).
    const wrong = await run(['status', '--redis', url(secured), ...ca, '--user', USER], { NEARCACHE_REDIS_PASSWORD: ADMIN })
    expect(wrong.code, show(wrong)).toBe(1)
    expect(wrong.stderr).toMatch(/WRONGPASS.*Check --user and the password/)
    const noUser = await run(['stats', '--json', '--redis', url(secured), ...ca])
    expect(noUser.code, show(noUser)).toBe(1)
    expect(noUser.stderr).toMatch(/NOAUTH/)
    // A refused password in the URL: the message names the URL with the password masked.
    const inUrl = await run(['status', '--json', '--redis', `rediss://${USER}:${ADMIN}@127.0.0.1:${secured.port}`, ...ca])
    expect(inUrl.code, show(inUrl)).toBe(1)
    expect(inUrl.stderr).toContain(`rediss://${USER}:***@127.0.0.1:${secured.port}`)
    // Nothing listens on port 1: the connection error names the URL, masked too.
    const plainUrl = await run(['status', '--redis', `redis://${USER}:${PASSWORD}@127.0.0.1:1`])
    expect(plainUrl.code, show(plainUrl)).toBe(1)
    expect(plainUrl.stderr).toContain(`redis://${USER}:***@127.0.0.1:1`)
    for (const r of runs) expectNoSecret(r)
  }, CLI_TIMEOUT)

  it('a command that fails after logging in (NOPERM) does not show the password either', async () => {
    const limited = await startStandalone({ tls: { files }, args: ['--user', 'reader', 'on', `>${PASSWORD}`, '~*', '&*', '+@read', '+@connection', '+info', '+scan'] })
    try {
      const r = await nearcache(['invalidate', '--key', 'user:1', '--namespace', 'app', '--redis', url(limited), ...ca, '--user', 'reader', '--password-file', pwFile])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr).toMatch(/NOPERM|lacks permission/)
      expectNoSecret(r)
    } finally {
      await limited.stop()
    }
  }, CLI_TIMEOUT)

  it('password files: group- or other-readable, missing, or empty files are refused and say why', async () => {
    const loose = path.join(files.dir, 'loose-password')
    writeFileSync(loose, `${PASSWORD}\n`)
    chmodSync(loose, 0o644)
    const r = await nearcache(['status', '--redis', url(secured), ...ca, '--user', USER, '--password-file', loose])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toMatch(/refusing --password-file .*group or others can read or write it \(mode 0644\); chmod 600 it/)
    const missing = await nearcache(['status', '--redis', url(secured), ...ca, '--password-file', path.join(files.dir, 'nope')])
    expect(missing.code, show(missing)).toBe(1)
    expect(missing.stderr).toMatch(/cannot read --password-file .*ENOENT/)
    const missingCa = await nearcache(['status', '--redis', url(secured), '--tls-ca', path.join(files.dir, 'nope.crt')])
    expect(missingCa.code, show(missingCa)).toBe(1)
    expect(missingCa.stderr).toMatch(/cannot read --tls-ca .*ENOENT/)
    const half = await nearcache(['status', '--redis', url(mutual), ...ca, '--tls-cert', files.client.cert])
    expect(half.code, show(half)).toBe(2)
    expect(half.stderr).toMatch(/--tls-cert and --tls-key go together/)
    for (const x of [r, missing, missingCa, half]) expectNoSecret(x)
  }, CLI_TIMEOUT)

  it('--cluster takes TLS and credentials like --redis: status and stats --json; a wrong password is refused', async () => {
    const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')
    const r = await nearcache(['status', '--cluster', seeds, ...ca, '--user', USER, '--password-file', pwFile])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(/Redis Cluster|cluster/)
    const json = await nearcache(['stats', '--json', '--cluster', seeds, ...ca, '--user', USER], { NEARCACHE_REDIS_PASSWORD: PASSWORD })
    expect(json.code, show(json)).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ mode: 'cluster' })
    const wrong = await nearcache(['status', '--cluster', seeds, ...ca, '--user', USER], { NEARCACHE_REDIS_PASSWORD: ADMIN })
    expect(wrong.code, show(wrong)).toBe(1)
    expect(wrong.stderr).toMatch(/WRONGPASS/)
    const untrusted = await nearcache(['status', '--cluster', seeds, '--tls', '--user', USER, '--password-file', pwFile])
    expect(untrusted.code, show(untrusted)).toBe(1)
    expect(untrusted.stderr).toMatch(/TLS certificate is not trusted/)
    for (const x of [r, json, wrong, untrusted]) expectNoSecret(x)
  }, CLI_TIMEOUT)
})
