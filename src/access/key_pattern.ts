/**
 * Key patterns of a principal (`keys: ['user:*', 'public:*']`): globs relative to
 * the view's namespace, where `*` matches any run of characters (':' included,
 * possibly none) and every other character matches itself. There is no other
 * wildcard and no escape: `?`, `[` and `\` are plain characters.
 *
 * A pattern is compiled once into its literal pieces. Matching never builds a
 * regular expression from user text and never backtracks: the first piece must
 * start the key, the last must end it, and each piece between is found left to
 * right with indexOf at the earliest place after the previous one (for `*`-only
 * globs the earliest place is always right), so a match costs one pass over the key
 * per piece at worst, whatever the pattern.
 */
export class KeyPattern {
  /** The literal pieces between the stars. */
  private readonly pieces: string[]
  /** Whether the pattern has a `*` at all (else it is one literal key). */
  private readonly star: boolean

  constructor(readonly source: string) {
    this.pieces = source.split('*')
    this.star = this.pieces.length > 1
  }

  /** Whether key `key` (relative to the namespace) matches. */
  matches(key: string): boolean {
    const p = this.pieces
    if (!this.star) return key === this.source
    const first = p[0] as string
    const last = p[p.length - 1] as string
    if (key.length < first.length + last.length) return false
    if (!key.startsWith(first) || !key.endsWith(last)) return false
    let at = first.length
    const end = key.length - last.length
    for (let i = 1; i < p.length - 1; i++) {
      const piece = p[i] as string
      if (piece.length === 0) continue
      const found = key.indexOf(piece, at)
      if (found < 0 || found + piece.length > end) return false
      at = found + piece.length
    }
    return true
  }

  /**
   * Whether every key that starts with `prefix` matches (invalidatePrefix may
   * remove them all). Only a pattern ending in `*` can match unboundedly many
   * keys, and then it covers the prefix exactly when the prefix itself matches
   * (the final `*` absorbs whatever follows).
   */
  coversPrefix(prefix: string): boolean {
    if (!this.source.endsWith('*')) return false
    return this.matches(prefix)
  }
}

/** A principal's patterns: a key is allowed when any one matches. */
export class KeyScope {
  private readonly patterns: KeyPattern[]
  /** Whether some pattern is a bare `*` (every key of the namespace). */
  readonly all: boolean

  constructor(sources: readonly string[]) {
    this.patterns = sources.map((s) => new KeyPattern(s))
    this.all = sources.some((s) => s.length > 0 && [...s].every((c) => c === '*'))
  }

  allows(key: string): boolean {
    if (this.all) return true
    for (const p of this.patterns) if (p.matches(key)) return true
    return false
  }

  /** The first key of `keys` not allowed, or undefined when all are. */
  firstDenied(keys: readonly string[]): string | undefined {
    if (this.all) return undefined
    for (const k of keys) if (!this.allows(k)) return k
    return undefined
  }

  allowsPrefix(prefix: string): boolean {
    return this.all || this.patterns.some((p) => p.coversPrefix(prefix))
  }
}
