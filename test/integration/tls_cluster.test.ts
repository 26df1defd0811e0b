import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions } from '../../src/index.js'
import { startCluster } from '../helpers/redis_servers.js'
import type { RedisClusterHandle } from '../helpers/redis_servers.js'
import { makeTlsFiles } from '../helpers/tls_certs.js'
import type { TlsFiles } from '../helpers/tls_certs.js'
import { exerciseOverTls, failure } from '../helpers/tls_scenario.js'

/**
 * TLS and mutual TLS to 3-master Redis Clusters whose nodes listen on TLS only,
 * with `tls-cluster yes` and `tls-replication yes` (the nodes announce their
 * TLS ports, so ioredis reaches every master over TLS through
 * `redisOptions.tls`). ioredis hides its nodes' TLS errors during slot
 * discovery; the cache finds the cause by connecting once to a seed node, and
 * the tests assert that cause.
 */

const FAST: Partial<CacheOptions> = { l1: false, connectTimeout: 5000, commandTimeout: 5000 }
const NO_CLIENT_CERT_CODES = ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'ECONNRESET', 'EPIPE']

describe('TLS to a Redis Cluster', () => {
  let files: TlsFiles
  let open: RedisClusterHandle // tls-auth-clients no
  let mutual: RedisClusterHandle // tls-auth-clients yes

  beforeAll(async () => {
    files = makeTlsFiles()
    // One at a time: six servers and two `redis-cli --cluster create` at once load a 2-core machine for no gain.
    open = await startCluster({ masters: 3, tls: { files } })
    mutual = await startCluster({ masters: 3, tls: { files, authClients: 'yes' } })
  })
  afterAll(async () => {
    await Promise.all([open?.stop(), mutual?.stop()])
    files?.remove()
  })

  it('the nodes speak TLS only: CLUSTER SLOTS announces the TLS ports, and a plain connection is refused', async () => {
    const nodes = await open.servers[0]!.command(['CLUSTER', 'NODES'])
    const announced = [...nodes.matchAll(/^\S+ 127\.0\.0\.1:(\d+)@/gm)].map((m) => Number(m[1])).sort()
    expect(announced).toEqual(open.nodes.map((n) => n.port).sort())
    const err = await failure(createCache({ ...FAST, redis: { cluster: open.nodes } }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(err.message).toMatch(/accepts only TLS connections/)
  })

  it('without a client certificate: set, get, getMany, invalidation between two caches, clear', async () => {
    await exerciseOverTls({ cluster: open.nodes, redisOptions: { tls: { ca: files.caPem } } }, 'tls-cluster')
  })

  it('mutual TLS with a client certificate: the same round trip', async () => {
    const tls = { ca: files.caPem, cert: files.client.certPem, key: files.client.keyPem }
    await exerciseOverTls({ cluster: mutual.nodes, redisOptions: { tls } }, 'mtls-cluster')
  })

  it('a missing client certificate is refused, and the message says the Cluster requires one', async () => {
    const err = await failure(createCache({ ...FAST, redis: { cluster: mutual.nodes, redisOptions: { tls: { ca: files.caPem } } } }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(NO_CLIENT_CERT_CODES).toContain((err.cause as { code?: string }).code)
    expect(err.message).toMatch(/requires (a client certificate|one) \(mutual TLS, tls-auth-clients yes\)/)
    expect(err.message).toMatch(/give tls\.cert and tls\.key/)
  })

  it('an untrusted server certificate is refused, and the message says so', async () => {
    const err = await failure(createCache({ ...FAST, redis: { cluster: open.nodes, redisOptions: { tls: { ca: files.otherCaPem } } } }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']).toContain((err.cause as { code?: string }).code)
    expect(err.message).toMatch(/TLS certificate is not trusted/)
  })

  it('a hostname mismatch is refused, and the message says so', async () => {
    // The nodes' certificates name 127.0.0.1 and localhost; checking them against another name must fail.
    const tls = { ca: files.caPem, servername: 'wrong.example' }
    const err = await failure(createCache({ ...FAST, redis: { cluster: open.nodes, redisOptions: { tls } } }))
    expect(err.code).toBe('E_L2_UNAVAILABLE')
    expect((err.cause as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID')
    expect(err.message).toMatch(/hostname\/IP mismatch/)
  })
})
