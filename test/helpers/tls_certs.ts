// Throw-away TLS material for tests, made with the openssl CLI in a temp dir:
// a CA; a server certificate for 127.0.0.1/localhost and a client certificate,
// both signed by it; a server certificate signed by it whose names do not match
// 127.0.0.1 (the hostname-mismatch case); and a second CA nobody trusts, with a
// server certificate for 127.0.0.1 signed by it (the untrusted-server case).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A certificate and its key (paths), plus their PEM text. */
export interface CertPair {
  cert: string
  key: string
  certPem: string
  keyPem: string
}

export interface TlsFiles {
  dir: string
  caCert: string
  serverCert: string
  serverKey: string
  /** The CA certificate's PEM text (what a client that trusts the CA passes as `ca`). */
  caPem: string
  /** A client certificate signed by the CA (for mutual TLS). */
  client: CertPair
  /** A server certificate signed by the CA for DNS:wrong.example only: 127.0.0.1 does not match it. */
  mismatched: CertPair
  /** A second CA, which no test client trusts ... */
  otherCaCert: string
  otherCaPem: string
  /** ... and a server certificate for 127.0.0.1 it signed. */
  untrusted: CertPair
  /** Removes the temp dir. */
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 })
}

/** A key and a certificate `name`.crt signed by `ca` (`ca`.crt/`ca`.key in `dir`), with the given extensions. */
function signed(dir: string, name: string, ca: string, subject: string, ext: string): CertPair {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir)
  writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`)
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`], dir)
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') }
}

function makeCa(dir: string, name: string, subject: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', subject], dir)
}

/** All the material above, valid for a day. */
export function makeTlsFiles(): TlsFiles {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nearcache-tls-'))
  makeCa(dir, 'ca', '/CN=nearcache test CA')
  makeCa(dir, 'other-ca', '/CN=nearcache untrusted CA')
  const server = signed(dir, 'server', 'ca', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost')
  const client = signed(dir, 'client', 'ca', '/CN=nearcache test client', 'extendedKeyUsage=clientAuth')
  const mismatched = signed(dir, 'mismatched', 'ca', '/CN=wrong.example', 'subjectAltName=DNS:wrong.example')
  const untrusted = signed(dir, 'untrusted', 'other-ca', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost')
  const caCert = path.join(dir, 'ca.crt')
  const otherCaCert = path.join(dir, 'other-ca.crt')
  return {
    dir,
    caCert,
    serverCert: server.cert,
    serverKey: server.key,
    caPem: readFileSync(caCert, 'utf8'),
    client,
    mismatched,
    otherCaCert,
    otherCaPem: readFileSync(otherCaCert, 'utf8'),
    untrusted,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** redis-server arguments for a TLS port beside the plain one (clients need no certificate of their own). */
export function tlsServerArgs(files: TlsFiles, tlsPort: number): string[] {
  return ['--tls-port', String(tlsPort), '--tls-cert-file', files.serverCert, '--tls-key-file', files.serverKey,
    '--tls-ca-cert-file', files.caCert, '--tls-auth-clients', 'no']
}
