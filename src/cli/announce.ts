import { randomUUID } from 'node:crypto'
import { channelFor, LEGACY_CHANNEL, namespacePrefixes, rootNamespace } from '../keys.js'
import { encodeMessages } from '../l2/bus_protocol.js'
import type { Client } from './connect.js'

/**
 * Tells every running nearcache process to drop its L1 copies of a namespace, after
 * this command changed the namespace in Redis without going through the library
 * (restore). Sent on the namespace's root channel, and on the pre-1.0 global
 * channel for processes that have not been upgraded yet. A receiver takes the
 * first message of a new publisher as is.
 */
export function announceNamespaceChanged(client: Client, namespace: string): Promise<void> {
  return announce(client, namespace, [], namespacePrefixes(namespace))
}

/** Tells running processes to drop their L1 copies of `keys` (full keys of `namespace`), which this command wrote. */
export function announceKeysChanged(client: Client, namespace: string, keys: readonly string[]): Promise<void> {
  return keys.length === 0 ? Promise.resolve() : announce(client, namespace, keys, [])
}

async function announce(client: Client, namespace: string, keys: readonly string[], prefixes: readonly string[]): Promise<void> {
  const origin = `nearcache-cli-${randomUUID()}`
  const root = rootNamespace(namespace)
  const sends: Promise<unknown>[] = []
  for (const [channel, legacy] of [[channelFor(namespace), false], [LEGACY_CHANNEL, true]] as const) {
    let seq = 0
    for (const text of encodeMessages(origin, () => seq++, keys, prefixes, root, legacy)) sends.push(client.publish(channel, text))
  }
  await Promise.all(sends)
}
