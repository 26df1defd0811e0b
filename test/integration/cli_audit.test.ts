import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { uniqueNamespace } from '../helpers/backends.js'
import { CLI_TIMEOUT, nearcache, show } from '../helpers/cli_runner.js'

/**
 * The CLI's admin commands (invalidate, restore, rekey) run outside any cache:
 * `--audit-file FILE` records each run in the audit log format, whatever its outcome.
 */
let dir = ''
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nc-cli-audit-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const records = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)

describe('CLI --audit-file', { timeout: 4 * CLI_TIMEOUT }, () => {
  it('records a successful invalidate and a failed restore and rekey, principal cli, in a 0600 file', async () => {
    const url = inject('redisUrl')
    const ns = uniqueNamespace('cliaudit')
    const file = join(dir, 'logs', 'audit.jsonl')
    const ok = await nearcache(['invalidate', '--redis', url, '--namespace', ns, '--tag', 't1', '--audit-file', file])
    expect(ok.code, show(ok)).toBe(0)
    const failed = await nearcache(['restore', '--redis', url, '--namespace', ns, '--from', join(dir, 'no-such.backup'), '--audit-file', file])
    expect(failed.code, show(failed)).toBe(1)
    const rekey = await nearcache(['rekey', '--redis', 'redis://127.0.0.1:1', '--namespace', ns, '--audit-file', file], { NEARCACHE_KEYS: `1:${Buffer.alloc(32, 1).toString('base64')}` })
    expect(rekey.code, show(rekey)).not.toBe(0)

    const lines = await records(file)
    expect(lines.map((r) => [r.principal, r.operation, r.namespace, r.outcome])).toEqual([
      ['cli', 'invalidate', ns, 'ok'],
      ['cli', 'restore', ns, 'E_FAILED'],
      ['cli', 'rekey', ns, 'E_FAILED'],
    ])
    for (const r of lines) {
      expect(typeof r.durationMs).toBe('number')
      expect(Number.isNaN(Date.parse(String(r.time)))).toBe(false)
    }
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'logs'))).mode & 0o777).toBe(0o700)
  })

  it('an audit file that cannot be written fails the command that succeeded, saying so', async () => {
    const url = inject('redisUrl')
    const r = await nearcache(['invalidate', '--redis', url, '--namespace', uniqueNamespace('cliaudit'), '--tag', 't', '--audit-file', '/proc/nope/audit.jsonl'])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toMatch(/could not write the audit record to \/proc\/nope\/audit\.jsonl/)
  })
})
