/**
 * A throwaway TLS certificate for 127.0.0.1 (tests and benchmarks that need an https
 * server or a node speaking HTTPS): an EC P-256 self-signed certificate from openssl,
 * valid one day, with `IP:127.0.0.1` as its subject alternative name.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Writes `cert.pem` and `key.pem` into `dir` and returns their paths and contents.
 *
 * @example
 * const { cert, key } = selfSignedCertificate(dir)
 * https.createServer({ cert, key }, handler)
 */
export function selfSignedCertificate(dir: string): {
  certFile: string
  keyFile: string
  cert: Buffer
  key: Buffer
} {
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) }
}
