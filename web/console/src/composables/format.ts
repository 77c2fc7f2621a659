// Formatting helpers that depend on the locale.
import type { Locale } from '../i18n'

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
]

/** "5 min ago" / "il y a 5 min"; "now" under a minute. */
export function ago(locale: Locale, iso: string, now = Date.now()): string {
  const s = Math.round((Date.parse(iso) - now) / 1000)
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'short' })
  for (const [unit, secs] of units) {
    if (Math.abs(s) >= secs) return rtf.format(Math.trunc(s / secs), unit)
  }
  return rtf.format(0, 'second')
}

/** A compact waiting time: "42 s", "5 min", "3 h", "2 d". */
export function waited(iso: string, now = Date.now()): { value: number; unit: 's' | 'min' | 'h' | 'd' } {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return { value: s, unit: 's' }
  if (s < 3600) return { value: Math.floor(s / 60), unit: 'min' }
  if (s < 86400) return { value: Math.floor(s / 3600), unit: 'h' }
  return { value: Math.floor(s / 86400), unit: 'd' }
}

export function fileSize(locale: Locale, bytes: number): string {
  const nf = (n: number) => new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(n)
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${nf(bytes / 1024)} KB`
  return `${nf(bytes / 1024 / 1024)} MB`
}

/** The language's name in the locale, e.g. fr → "French" / "français". */
export function languageName(locale: Locale, code: string): string {
  if (!code) return ''
  try {
    const name = new Intl.DisplayNames([locale], { type: 'language' }).of(code) ?? code
    return name.charAt(0).toLocaleUpperCase(locale) + name.slice(1)
  } catch {
    return code
  }
}

/** Initials for an avatar. */
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean)
  if (parts.length === 0) return '?'
  const first = parts[0] ?? ''
  const last = parts.length > 1 ? (parts[parts.length - 1] ?? '') : ''
  return (first.charAt(0) + last.charAt(0)).toUpperCase()
}

/** The languages agents pick from: those detected (ADR 0009) first. */
export const commonLanguages = ['fr', 'en', 'de', 'es', 'it', 'nl', 'pt']

/** The completion categories the console offers; "archived" is the API's own. */
export const dispositions = ['solved', 'not_solved', 'information', 'duplicate', 'spam'] as const
export type Disposition = (typeof dispositions)[number] | 'archived'

export function isKnownDisposition(d: string): d is Disposition {
  return d === 'archived' || (dispositions as readonly string[]).includes(d)
}
