import { describe, expect, it } from 'vitest'
import { formatAnnouncement, formatEvent } from '../../src/cli/commands/events.js'
import { CliError, oneLine, UsageError } from '../../src/cli/errors.js'
import { jsonSafe, printable, quoted } from '../../src/cli/output.js'

/** Raw terminal controls: C0, DEL, C1, bidi embeddings/overrides/isolates/marks. */
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/
const EVIL = 'k\u001b[2J\u0007\u0000\u007f\u0085\u009b\u202e\u2066\u200f\u061c\n\tend'

describe('printable: names from outside the process reach the terminal escaped', () => {
  it('escapes C0, DEL, C1 as \\xNN and bidi characters as \\u{...}, and nothing else', () => {
    expect(printable(EVIL)).toBe('k\\x1b[2J\\x07\\x00\\x7f\\x85\\x9b\\u{202e}\\u{2066}\\u{200f}\\u{61c}\\x0a\\x09end')
    expect(printable('shop:user:1 żółw 😀 "q" \\')).toBe('shop:user:1 żółw 😀 "q" \\')
  })

  it('quoted and jsonSafe stay valid JSON and parse back to the original', () => {
    expect(quoted(EVIL)).not.toMatch(RAW_CONTROL)
    expect(JSON.parse(quoted(EVIL))).toBe(EVIL)
    const doc = JSON.stringify({ [EVIL]: [EVIL] }, null, 2)
    const safe = jsonSafe(doc)
    expect(safe.replace(/\n/g, '')).not.toMatch(RAW_CONTROL)
    expect(JSON.parse(safe)).toEqual({ [EVIL]: [EVIL] })
  })

  it('events: announcements and served events print keys, publishers and messages escaped', () => {
    const a = formatAnnouncement({ at: '2026-01-01T00:00:00.000Z', publisher: `p${EVIL}`, seq: 1, keys: [EVIL], prefixes: [EVIL] })
    expect(a).not.toMatch(RAW_CONTROL)
    expect(a).toContain('keys "k\\u001b[2J')
    const events = [
      { type: 'eviction', at: 0, key: EVIL },
      { type: 'invalidation', at: 0, direction: EVIL, publisher: EVIL, reason: EVIL, keys: [EVIL], prefixes: [EVIL] },
      { type: 'error', at: 0, code: EVIL, message: EVIL },
      { type: 'circuit', at: 0, state: EVIL },
      { type: EVIL, at: 0, other: EVIL },
    ]
    for (const e of events) expect(formatEvent(e as never)).not.toMatch(RAW_CONTROL)
  })

  it('error lines: oneLine and usage errors escape what they quote', () => {
    expect(oneLine(new CliError(`cannot read ${EVIL}`))).not.toMatch(RAW_CONTROL)
    expect(new UsageError(`bad ${EVIL}`).message).not.toMatch(RAW_CONTROL)
  })
})
