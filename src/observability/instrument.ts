import { channels, OPERATIONS, traced } from './tracing.js'

/**
 * Tracing through node:diagnostics_channel ('nearcache:get', 'nearcache:set', …):
 * wraps each public operation of `proto` so that it publishes start/end/error, but
 * only while someone subscribes to its channel; otherwise the wrapper is one
 * property check. `prefix` and the first string argument (the key) go in the context.
 */
export function instrument(proto: object): void {
  const methods = proto as Record<string, (...args: unknown[]) => unknown>
  for (const op of OPERATIONS) {
    const original = methods[op] as (...args: unknown[]) => unknown
    methods[op] = function (this: { prefix: string }, ...args: unknown[]) {
      if (!channels[op].hasSubscribers) return original.apply(this, args)
      return traced(op, { namespace: this.prefix, key: typeof args[0] === 'string' ? args[0] : undefined }, () => original.apply(this, args))
    }
  }
}
