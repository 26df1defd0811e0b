import { randomUUID } from 'node:crypto'
import { channelFor, LEGACY_CHANNEL, namespacePrefixes, rootNamespace } from '../keys.js'
import { encodeMessages } from '../l2/bus_protocol.js'
import type { BusSigner } from '../l2/bus_signer.js'
import type { Client } from './connect.js'

/**
 * Tells every running nearcache process to drop its L1 copies of a namespace, after
 * this command changed the namespace in Redis without going through the library
 * (restore). Sent on the namespace's root channel, and on the pre-1.0 global
 * channel for processes that have not been upgraded yet. A receiver takes the
 * first message of a new publisher as is. With `signer` (the command's encryption
 * keys) the messages are signed, and the legacy channel, whose format has no
 * signature, is left out.
 */
export function announceNamespaceChanged(client: Client, namespace: string, signer?: BusSigner): Promise<void> {
  return announce(client, namespace, [], namespacePrefixes(namespace), signer)
}

/** Tells running processes to drop their L1 copies of `keys` (full keys of `namespace`), which this command wrote. */
export function announceKeysChanged(client: Client, namespace: string, keys: readonly string[], signer?: BusSigner): Promise<void> {
  return keys.length === 0 ? Promise.resolve() : announce(client, namespace, keys, [], signer)
}

async function announce(client: Client, namespace: string, keys: readonly string[], prefixes: readonly string[], signer: BusSigner | undefined): Promise<void> {
  const origin = `nearcache-cli-${randomUUID()}`
  const root = rootNamespace(namespace)
  const sends: Promise<unknown>[] = []
  const channels = signer ? ([[channelFor(namespace), false]] as const) : ([[channelFor(namespace), false], [LEGACY_CHANNEL, true]] as const)
  for (const [channel, legacy] of channels) {
    let seq = 0
    for (const text of encodeMessages(origin, () => seq++, keys, prefixes, root, legacy)) sends.push(client.publish(channel, signer ? signer.sign(channel, text) : text))
  }
  await Promise.all(sends)
}
