/** A promise the test resolves by hand: holds a loader (or any async step) until the test releases it. */
export interface Gate {
  /** Resolves once release() is called. */
  readonly held: Promise<void>
  release(): void
}

export function gate(): Gate {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  return { held, release }
}
