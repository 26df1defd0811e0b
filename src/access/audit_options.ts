import { bytes, fail, flag, optional, wholeNumber } from '../options/declare.js'
import type { Decls } from '../options/declare.js'
import { describe } from '../util/units.js'
import type { AuditSinkFunction } from './audit.js'
import { AUDITED } from './audit_record.js'
import { KeyHasher } from './audit_record.js'

/** What the `audit` option accepts (documented on CacheOptions.audit). */
export interface AuditInput {
  sink: string | AuditSinkFunction
  operations?: 'all' | string[]
  hashKeys?: boolean
  hashKey?: Uint8Array | string
  maxQueue?: number
  maxFileBytes?: number | string
  maxFiles?: number
}

export interface ResolvedAudit {
  sink: string | AuditSinkFunction
  /** undefined = 'all'. */
  operations: string[] | undefined
  hashKeys: boolean
  /** The hasher made from `hashKey` (its bytes in a private field); undefined when not given. */
  hashKey: KeyHasher | undefined
  maxQueue: number
  maxFileBytes: number
  maxFiles: number
}

function parseSink(v: unknown, name: string): string | AuditSinkFunction {
  if (typeof v === 'function') return v as AuditSinkFunction
  if (typeof v === 'string' && v.length > 0 && !v.includes('\0')) return v
  return fail(`${name} must be a file path (JSON lines) or a function (records) => void (got ${describe(v)}).`)
}

function parseOperations(v: unknown, name: string): string[] | undefined {
  if (v === 'all') return undefined
  if (!Array.isArray(v)) return fail(`${name} must be 'all' or a list of operations (${AUDITED.join(', ')}) (got ${describe(v)}).`)
  for (const op of v as unknown[]) {
    if (!(AUDITED as readonly unknown[]).includes(op)) fail(`${name}: unknown operation ${describe(op)}; known: ${AUDITED.join(', ')}.`)
  }
  return [...new Set(v as string[])]
}

/** 32 bytes (Buffer/Uint8Array or base64 text); messages never show them. */
function parseHashKey(v: unknown, name: string): KeyHasher {
  let b: Buffer | undefined
  if (v instanceof Uint8Array) b = Buffer.from(v)
  else if (typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v.trim()) && v.trim().length % 4 === 0) b = Buffer.from(v.trim(), 'base64')
  if (b === undefined || b.length !== 32) fail(`${name} must be 32 bytes, as a Buffer/Uint8Array or base64 text${b === undefined ? '' : ` (got ${b.length} bytes)`}.`)
  return new KeyHasher(b as Buffer)
}

export const AUDIT: Decls<ResolvedAudit> = {
  sink: { required: true, parse: parseSink },
  operations: { default: 'all', parse: parseOperations },
  hashKeys: { default: false, parse: flag },
  hashKey: { parse: optional(parseHashKey) },
  maxQueue: { default: 10_000, parse: wholeNumber(1, 10_000_000) },
  maxFileBytes: { default: '64mb', parse: bytes() },
  maxFiles: { default: 5, parse: wholeNumber(1, 100) },
}
