import util from 'node:util'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CacheError, createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'
import { getFreePort } from '../helpers/free_port.js'
import { rawCommand, startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { makeTlsFiles, tlsServerArgs } from '../helpers/tls_certs.js'
import type { TlsFiles } from '../helpers/tls_certs.js'
import { failure } from '../helpers/failure.js'

/**
 * Connection failures say why, against real servers: a wrong password, a closed
 * port, an untrusted certificate, a missing ACL permission. No error, cause or
 * event ever carries a command argument (passwords, keys, values).
 */

const PASSWORD = 'pw-7f3c9e1a-right'
const WRONG = 'pw-0b5d2c8e-wrong'
const SECRET_VALUE = 'value-5e1f0a7c-secret'

/** Everything an error shows anywhere: message, cause chain, JSON and util.inspect. */
function everything(err: unknown): string {
  const parts: string[] = [util.inspect(err, { depth: 10, showHidden: true })]
  for (let e: unknown = err, i = 0; e instanceof Error && i < 10; e = e.cause, i++) {
    parts.push(e.message, JSON.stringify(e), JSON.stringify(Object.getOwnPropertyNames(e).map((k) => [k, String((e as never)[k])])))
  }
  return parts.join('\n')
}


/** Polls `fn` until it answers true (generous deadline; no timing assertion). */
async function until(fn: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const FAST: Partial<CacheOptions> = { l1: false, connectTimeout: 5000, commandTimeout: 5000 }

describe('connection failures say why', () => {
  let auth: RedisServerHandle
  let tls: TlsFiles
  let tlsServer: RedisServerHandle
  let tlsPort: number

  beforeAll(async () => {
    tls = makeTlsFiles()
    tlsPort = await getFreePort({})
    ;[auth, tlsServer] = await Promise.all([startStandalone({ args: ['--requirepass', PASSWORD] }), startStandalone({ args: tlsServerArgs(tls, tlsPort) })])
  })
  afterAll(async () => {
    await Promise.all([auth?.stop(), tlsServer?.stop()])
    tls?.remove()
  })

  it('a wrong password: E_L2_UNAVAILABLE with WRONGPASS in the message and the cause, no password anywhere', async () => {
    const err = await failure(createCache({ ...FAST, redis: `redis://:${WRONG}@127.0.0.1:${auth.port}` }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toMatch(/^Could not connect to Redis \(.*WRONGPASS invalid username-password pair/)
    expect(err.message).toMatch(/Check the username and password/)
    expect((err.cause as Error).message).toMatch(/^WRONGPASS/)
    expect(everything(err)).not.toContain(WRONG)
    expect(everything(err)).not.toContain(PASSWORD)
  })

  it('no password where one is needed: NOAUTH in the message', async () => {
    const err = await failure(createCache({ ...FAST, redis: `redis://127.0.0.1:${auth.port}` }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toMatch(/NOAUTH Authentication required/)
  })

  it('a password changed under a running cache: the error event and the failed call say WRONGPASS, and carry no password', async () => {
    const cache = await createCache({ ...FAST, redis: `redis://:${PASSWORD}@127.0.0.1:${auth.port}`, circuitBreaker: false })
    const events: Error[] = []
    cache.on('error', (e: Error) => events.push(e))
    try {
      await cache.set('k', SECRET_VALUE)
      const admin = new Redis({ port: auth.port, password: PASSWORD, lazyConnect: true })
      await admin.connect()
      try {
        await admin.config('SET', 'requirepass', WRONG)
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
        await until(() => events.some((e) => /WRONGPASS/.test(e.message)), 'a WRONGPASS error event')
        const err = await failure(cache.get('k'))
        expect(err.code).toBe('E_L2_UNAVAILABLE')
        expect(err.message).toMatch(/^Redis is unavailable during get \(.*WRONGPASS invalid username-password pair.*Check the username and password/)
        expect((err.cause as Error).message).toMatch(/^WRONGPASS/)
        expect(everything(err)).not.toContain(PASSWORD)
        for (const e of events) {
          // ioredis puts the AUTH command's arguments (the password) on its reply error.
          expect(e).toBeInstanceOf(CacheError)
          expect((e as CacheError).code).toBe('E_L2_UNAVAILABLE')
          expect(everything(e)).not.toContain(PASSWORD)
          expect(everything(e)).not.toContain(WRONG)
        }
      } finally {
        await admin.config('SET', 'requirepass', PASSWORD).catch(() => undefined)
        admin.disconnect()
      }
    } finally {
      await cache.close().catch(() => undefined)
    }
  })

  it('a closed port: ECONNREFUSED in the message and the cause', async () => {
    const port = await getFreePort({})
    const err = await failure(createCache({ ...FAST, redis: `redis://127.0.0.1:${port}` }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toMatch(new RegExp(`connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`))
    expect((err.cause as { code?: string }).code).toBe('ECONNREFUSED')
  })

  it('a server that goes away: each failed call and the open circuit name ECONNREFUSED, not only "Connection is closed"', async () => {
    const server = await startStandalone()
    const cache = await createCache({ ...FAST, redis: server.url, circuitBreaker: { threshold: 2, resetTimeout: '10m' } })
    cache.on('error', () => {})
    try {
      await cache.set('k', 1)
      await server.stop()
      for (let i = 0; i < 2; i++) {
        const err = await failure(cache.get('k'))
        expect(err.code).toBe('E_L2_UNAVAILABLE')
        expect(err.message).toMatch(/ECONNREFUSED/)
      }
      expect(cache.stats().circuit).toBe('open')
      const fast = await failure(cache.get('k'))
      expect(fast.message).toMatch(/circuit open after 2 failures in a row, the last: connect ECONNREFUSED/)
      expect((fast.cause as { code?: string }).code).toBe('ECONNREFUSED')
    } finally {
      await cache.close().catch(() => undefined)
      await server.stop()
    }
  })

  it('an untrusted TLS certificate: the certificate error in the message and the cause; trusting the CA connects', async () => {
    const err = await failure(createCache({ ...FAST, redis: `rediss://127.0.0.1:${tlsPort}` }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toMatch(/self-signed certificate in certificate chain/)
    expect(err.message).toMatch(/trust the server's certificate \(tls.ca\)/)
    expect((err.cause as { code?: string }).code).toBe('SELF_SIGNED_CERT_IN_CHAIN')
    const ok = await createCache({ ...FAST, redis: { host: '127.0.0.1', port: tlsPort, tls: { ca: tls.caPem } } })
    await ok.set('k', 'over tls')
    expect(await ok.get('k')).toBe('over tls')
    await ok.close()
  })

  describe('NOPERM', () => {
    let cache: NearCache
    const ns = 'acl-test'
    beforeAll(async () => {
      // A user that may do everything but GET, MGET and SET.
      await rawCommand(tlsServer.port, ['ACL', 'SETUSER', 'limited', 'on', '>limited-pw', '~*', '&*', '+@all', '-get', '-mget', '-set'])
      cache = await createCache({ ...FAST, redis: `redis://limited:limited-pw@127.0.0.1:${tlsServer.port}`, namespace: ns, circuitBreaker: { threshold: 2, resetTimeout: '10m' } })
    })
    afterAll(async () => {
      await cache?.close()
    })

    it('is E_L2_ERROR naming the missing permission, and never opens the circuit', async () => {
      for (let i = 0; i < 5; i++) {
        const err = await failure(cache.get('k'))
        expect(err.code).toBe('E_L2_ERROR')
        expect(err.message).toMatch(/lacks permission to run the '(mget|get)' command \(NOPERM/)
      }
      expect(cache.stats().circuit).toBe('closed')
      const write = await failure(cache.set('secret-key', SECRET_VALUE))
      expect(write.code).toBe('E_L2_ERROR')
      expect(write.message).toMatch(/permission to run the 'set' command/)
      expect(cache.stats().circuit).toBe('closed')
    })

    it('the error and its cause carry no command arguments: not the key, not the value', async () => {
      const err = await failure(cache.set('secret-key', SECRET_VALUE))
      const shown = everything(err)
      expect(shown).toMatch(/NOPERM/)
      expect(shown).not.toContain(`${ns}:secret-key`)
      expect(shown).not.toContain(SECRET_VALUE)
      expect(err.cause).not.toHaveProperty('command')
      expect(Object.keys(err.cause as object)).not.toContain('args')
    })
  })
})
