// Throw-away TLS material for tests, made with the openssl CLI in a temp dir:
// a CA and a server certificate for 127.0.0.1 signed by it.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface TlsFiles {
  dir: string
  caCert: string
  serverCert: string
  serverKey: string
  /** The CA certificate's PEM text (what a client that trusts the CA passes as `ca`). */
  caPem: string
  /** Removes the temp dir. */
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 })
}

/** A CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) it signed, valid for a day. */
export function makeTlsFiles(): TlsFiles {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nearcache-tls-'))
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=nearcache test CA'], dir)
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir)
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext'], dir)
  const caCert = path.join(dir, 'ca.crt')
  return {
    dir,
    caCert,
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    caPem: readFileSync(caCert, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** redis-server arguments for a TLS port beside the plain one (clients need no certificate of their own). */
export function tlsServerArgs(files: TlsFiles, tlsPort: number): string[] {
  return ['--tls-port', String(tlsPort), '--tls-cert-file', files.serverCert, '--tls-key-file', files.serverKey,
    '--tls-ca-cert-file', files.caCert, '--tls-auth-clients', 'no']
}
