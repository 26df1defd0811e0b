import { randomUUID } from 'node:crypto'
import { namespacePrefixes } from '../keys.js'
import type { Client } from './connect.js'

/**
 * The channel and message format of the library's cross-process invalidation bus
 * (src/l2/invalidation_bus.ts, channel set in src/create.ts). Keep in step with it.
 */
const INVALIDATION_CHANNEL = '__nc|inv'

/**
 * Tells every running nearcache process to drop its L1 copies of a namespace, after
 * this command changed the namespace in Redis without going through the library
 * (restore). A receiver takes the first message of a new publisher as is.
 */
export async function announceNamespaceChanged(client: Client, namespace: string): Promise<void> {
  const message = { o: `nearcache-cli-${randomUUID()}`, s: 0, p: namespacePrefixes(namespace) }
  await client.publish(INVALIDATION_CHANNEL, JSON.stringify(message))
}
