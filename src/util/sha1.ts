import { createHash } from 'node:crypto'

export function sha1(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex')
}
