// Form logic of the admin and supervisor screens, kept free of Vue so the
// tests can run it: the checks made before a request (the same rules as the
// API's, so most mistakes are shown without a round trip) and the mapping of
// a problem+json answer's field errors onto the fields of a form.
import { ApiError } from '../api/client'
import type { MessageKey } from '../i18n'

/** What is wrong with a value: a message key and its parameters. */
export interface Issue {
  key: MessageKey
  params?: Record<string, string | number>
  /** In a list: which entry (from 1) the issue is about. */
  item?: number
}

/** A check of one value: an issue, or null when the value passes. */
export type Rule = (v: unknown) => Issue | null

const encoder = new TextEncoder()

/** The length of a string in UTF-8 bytes, as the API counts its limits. */
export function bytes(s: string): number {
  return encoder.encode(s).length
}

function text(v: unknown): string {
  if (v === undefined || v === null) return ''
  return typeof v === 'string' ? v : String(v)
}

function blank(v: unknown): boolean {
  if (Array.isArray(v)) return v.length === 0
  return text(v).trim() === ''
}

export const rules = {
  required: (): Rule => (v) => (blank(v) ? { key: 'admin.form.required' } : null),
  /** At most n bytes of UTF-8. */
  maxBytes:
    (n: number): Rule =>
    (v) =>
      bytes(text(v)) > n ? { key: 'admin.form.max_bytes', params: { n } } : null,
  /** At least n characters, when a value is given. */
  minChars:
    (n: number): Rule =>
    (v) => {
      const s = text(v)
      return s !== '' && [...s].length < n ? { key: 'admin.form.min_chars', params: { n } } : null
    },
  /** One line: no line break. */
  oneLine: (): Rule => (v) => (/[\r\n]/.test(text(v)) ? { key: 'admin.form.one_line' } : null),
  /** Matches the pattern, when a value is given. */
  pattern:
    (re: RegExp, key: MessageKey): Rule =>
    (v) => {
      const s = text(v).trim()
      return s !== '' && !re.test(s) ? { key } : null
    },
  /** A plain address, when a value is given. */
  email: (): Rule => (v) => {
    const s = text(v).trim()
    return s !== '' && !/^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/.test(s) ? { key: 'admin.form.email' } : null
  },
  /** A whole number from min to max, when a value is given. */
  integer:
    (min: number, max: number): Rule =>
    (v) => {
      if (blank(v)) return null
      const n = Number(text(v).trim())
      return Number.isInteger(n) && n >= min && n <= max ? null : { key: 'admin.form.integer', params: { min, max } }
    },
  /** A number above 0 (fractions allowed) and at most max, when a value is given. */
  positive:
    (max: number): Rule =>
    (v) => {
      if (blank(v)) return null
      const n = Number(text(v).trim().replace(',', '.'))
      return Number.isFinite(n) && n > 0 && n <= max ? null : { key: 'admin.form.positive', params: { max } }
    },
  /** An absolute https (or http) URL without user information, when a value is given. */
  url: (): Rule => (v) => {
    const s = text(v).trim()
    if (s === '') return null
    try {
      const u = new URL(s)
      if ((u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password) return null
    } catch {
      // not a URL
    }
    return { key: 'admin.form.url' }
  },
  /** Each item of a list passes the rule; the issue is the first item's that fails, naming it. */
  each:
    (rule: Rule): Rule =>
    (v) => {
      const list = Array.isArray(v) ? v : []
      for (let i = 0; i < list.length; i++) {
        const issue = rule(list[i])
        if (issue) return { ...issue, item: i + 1 }
      }
      return null
    },
  /** At most n items. */
  maxItems:
    (n: number): Rule =>
    (v) =>
      Array.isArray(v) && v.length > n ? { key: 'admin.form.max_items', params: { n } } : null,
}

/** Runs each field's rules on the values; the first issue of each field is kept. */
export function validate(values: Record<string, unknown>, schema: Record<string, Rule[]>): Record<string, Issue> {
  const out: Record<string, Issue> = {}
  for (const [field, list] of Object.entries(schema)) {
    for (const rule of list) {
      const issue = rule(values[field])
      if (issue) {
        out[field] = issue
        break
      }
    }
  }
  return out
}

/** What a failed request means for a form: a message per field, and what names no field. */
export interface ProblemView {
  fields: Record<string, string>
  general: string[]
}

/**
 * Maps the field errors of an API error onto a form's fields. A field path
 * goes to the longest known field it starts with (`imap.host` to
 * `imap.host`, else `imap`; `numbers[2]` to `numbers`, saying which item);
 * the paths no field holds, and the problem's detail when no field took
 * anything, go to general.
 */
export function mapProblem(
  err: unknown,
  known: readonly string[],
  item: (n: number, reason: string) => string = (n, r) => `#${n}: ${r}`,
): ProblemView {
  const view: ProblemView = { fields: {}, general: [] }
  if (!(err instanceof ApiError)) {
    view.general.push(err instanceof Error ? err.message : String(err))
    return view
  }
  for (const e of err.problem.errors ?? []) {
    const field = ownerOf(e.field, known)
    if (field === null) {
      view.general.push(e.field && e.field !== 'body' ? `${e.field}: ${e.reason}` : e.reason)
      continue
    }
    const rest = e.field.slice(field.length)
    const index = /^\[(\d+)\]/.exec(rest)
    const reason = index ? item(Number(index[1]) + 1, e.reason) : e.reason
    view.fields[field] = view.fields[field] ? `${view.fields[field]}; ${reason}` : reason
  }
  if (Object.keys(view.fields).length === 0 && view.general.length === 0) {
    view.general.push(err.problem.detail || err.problem.title)
  }
  return view
}

function ownerOf(path: string, known: readonly string[]): string | null {
  let best: string | null = null
  for (const k of known) {
    const owns = path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`)
    if (owns && (best === null || k.length > best.length)) best = k
  }
  return best
}

/** The non-blank lines of a text, trimmed, each once, in order. */
export function lines(s: string): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const raw of s.split(/\r?\n/)) {
    const v = raw.trim()
    if (v === '' || seen.has(v)) continue
    seen.add(v)
    out.push(v)
  }
  return out
}

/** Language codes from a text such as "fr, en de": lower-cased, each once. */
export function languages(s: string): string[] {
  const seen = new Set<string>()
  for (const raw of s.split(/[\s,;]+/)) {
    const v = raw.trim().toLowerCase()
    if (v) seen.add(v)
  }
  return [...seen]
}

/** A number typed in a field: undefined when empty; a comma is taken as the decimal point. */
export function numberOrUndefined(s: string | number | null | undefined): number | undefined {
  if (s === null || s === undefined) return undefined
  if (typeof s === 'number') return Number.isFinite(s) ? s : undefined
  const v = s.trim().replace(',', '.')
  if (v === '') return undefined
  const n = Number(v)
  return Number.isFinite(n) ? n : undefined
}
