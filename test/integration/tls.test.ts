import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions } from '../../src/index.js'
import { startStandalone } from '../helpers/redis_servers.js'
import type { RedisServerHandle } from '../helpers/redis_servers.js'
import { makeTlsFiles } from '../helpers/tls_certs.js'
import type { TlsFiles } from '../helpers/tls_certs.js'
import { exerciseOverTls, failure } from '../helpers/tls_scenario.js'

/**
 * TLS and mutual TLS to a standalone server that listens on TLS only
 * (`--port 0 --tls-port P`), with certificates the harness makes: the cache
 * works with and without a client certificate, and each rejection says its
 * cause (an untrusted server certificate, a hostname mismatch, a missing client
 * certificate) in the CacheError's message and cause.
 */

const FAST: Partial<CacheOptions> = { l1: false, connectTimeout: 5000, commandTimeout: 5000 }
/** What a server that requires a client certificate does to a TLS 1.3 client without one: an alert, or a reset when the alert loses the race. */
const NO_CLIENT_CERT_CODES = ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ECONNRESET', 'EPIPE']

describe('TLS to a standalone server', () => {
  let files: TlsFiles
  let plain: RedisServerHandle // tls-auth-clients no
  let mutual: RedisServerHandle // tls-auth-clients yes
  let mismatched: RedisServerHandle // a certificate for wrong.example only
  let untrusted: RedisServerHandle // a certificate from a CA the client does not trust

  beforeAll(async () => {
    files = makeTlsFiles()
    ;[plain, mutual, mismatched, untrusted] = await Promise.all([
      startStandalone({ tls: { files } }),
      startStandalone({ tls: { files, authClients: 'yes' } }),
      startStandalone({ tls: { files, serverCert: files.mismatched } }),
      startStandalone({ tls: { files, serverCert: files.untrusted } }),
    ])
  })
  afterAll(async () => {
    await Promise.all([plain?.stop(), mutual?.stop(), mismatched?.stop(), untrusted?.stop()])
    files?.remove()
  })

  const at = (server: RedisServerHandle, tls: Record<string, unknown>) => ({ host: '127.0.0.1', port: server.port, tls })

  it('the servers speak TLS only: a plain connection is refused, and says TLS may be why', async () => {
    const err = await failure(createCache({ ...FAST, redis: { host: '127.0.0.1', port: plain.port } }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toMatch(/accepts only TLS connections .*rediss:\/\/ or a tls option/)
  })

  it('without a client certificate (tls-auth-clients no): set, get, getMany, invalidation between two caches, clear', async () => {
    await exerciseOverTls(at(plain, { ca: files.caPem }), 'tls-standalone')
  })

  it('mutual TLS (tls-auth-clients yes) with a client certificate: the same round trip', async () => {
    await exerciseOverTls(at(mutual, { ca: files.caPem, cert: files.client.certPem, key: files.client.keyPem }), 'mtls-standalone')
  })

  it('an untrusted server certificate is refused, and the message says the certificate is not trusted', async () => {
    const err = await failure(createCache({ ...FAST, redis: at(untrusted, { ca: files.caPem }) }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']).toContain((err.cause as { code?: string }).code)
    expect(err.message).toMatch(/TLS certificate is not trusted/)
    expect(err.message).toMatch(/trust the server's certificate \(tls\.ca\)/)
    expect(err.message).not.toMatch(/client certificate|mismatch/)
    // Trusting the CA that signed it is all that was missing.
    const ok = await createCache({ ...FAST, redis: at(untrusted, { ca: files.otherCaPem }) })
    await ok.set('k', 'trusted now')
    expect(await ok.get('k')).toBe('trusted now')
    await ok.close()
  })

  it('a certificate that does not name 127.0.0.1 is refused as a hostname mismatch, though its CA is trusted', async () => {
    const err = await failure(createCache({ ...FAST, redis: at(mismatched, { ca: files.caPem }) }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect((err.cause as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
    expect(err.message).toMatch(/does not name the host connected to \(hostname\/IP mismatch\)/)
    expect(err.message).toMatch(/tls\.servername/)
    expect(err.message).not.toMatch(/not trusted|client certificate/)
    // Checking the certificate against the name it does carry connects: only the name was wrong.
    const ok = await createCache({ ...FAST, redis: at(mismatched, { ca: files.caPem, servername: 'wrong.example' }) })
    await ok.set('k', 'named')
    expect(await ok.get('k')).toBe('named')
    await ok.close()
  })

  it('a server that requires a client certificate refuses a client without one, and the message says so', async () => {
    const err = await failure(createCache({ ...FAST, redis: at(mutual, { ca: files.caPem }) }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(NO_CLIENT_CERT_CODES).toContain((err.cause as { code?: string }).code)
    expect(err.message).toMatch(/requires (a client certificate|one) \(mutual TLS, tls-auth-clients yes\)/)
    expect(err.message).toMatch(/give tls\.cert and tls\.key/)
    expect(err.message).not.toMatch(/not trusted|mismatch/)
  })

  it('a client certificate from a CA the server does not trust is refused as well', async () => {
    // The untrusted server's certificate is a valid certificate, but from the other CA: the server does not accept it from a client.
    const err = await failure(createCache({ ...FAST, redis: at(mutual, { ca: files.caPem, cert: files.untrusted.certPem, key: files.untrusted.keyPem }) }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    // The server's alert (unknown CA), or a reset when the alert loses the race with the client's first command.
    expect((err.cause as { code?: string }).code).toMatch(/^(ERR_SSL_(TLSV1\d?|SSLV3)_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE)|ECONNRESET|EPIPE)$/)
    expect(err.message).toMatch(/did not accept this one|rejected the client certificate/)
    expect(err.message).toMatch(/signed by a CA in the server's tls-ca-cert-file/)
  })
})
