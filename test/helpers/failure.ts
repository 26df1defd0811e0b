import { expect } from 'vitest'
import { CacheError } from '../../src/index.js'

/** The rejection of `p`, which must be a typed CacheError (a resolution or an untyped error fails the test). */
export async function failure(p: Promise<unknown>): Promise<CacheError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`)
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CacheError)
  return err as CacheError
}
