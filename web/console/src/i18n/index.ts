// A small i18n: French and English message tables with the same keys (the
// English table defines them; the French one must have each, the compiler
// checks), {name} placeholders, and the choice remembered in localStorage.
import { inject, ref, type App, type InjectionKey, type Ref } from 'vue'
import { adminEn } from '../admin/i18n/en'
import { adminFr } from '../admin/i18n/fr'
import { en } from './en'
import { fr } from './fr'

export type MessageKey = keyof typeof en | keyof typeof adminEn
/** The agents' table (fr.ts); the admin screens have theirs in src/admin/i18n. */
export type Messages = Record<keyof typeof en, string>
export type Locale = 'fr' | 'en'
export const locales: Locale[] = ['fr', 'en']

const tables: Record<Locale, Record<MessageKey, string>> = { en: { ...en, ...adminEn }, fr: { ...fr, ...adminFr } }
const storageKey = 'sb.locale'

export interface I18n {
  locale: Ref<Locale>
  t: (key: MessageKey, params?: Record<string, string | number>) => string
  setLocale: (l: Locale) => void
  /** Formats a date and time for the current locale. */
  dateTime: (iso: string | Date, opts?: Intl.DateTimeFormatOptions) => string
  number: (n: number) => string
}

const key: InjectionKey<I18n> = Symbol('i18n')

/** The initial locale: remembered, else French when the browser prefers it, else English. */
export function pickLocale(stored: string | null, preferred: readonly string[]): Locale {
  if (stored === 'fr' || stored === 'en') return stored
  for (const p of preferred) {
    const lang = p.slice(0, 2).toLowerCase()
    if (lang === 'fr') return 'fr'
    if (lang === 'en') return 'en'
  }
  return 'en'
}

export function format(msg: string, params?: Record<string, string | number>): string {
  if (!params) return msg
  return msg.replace(/\{(\w+)\}/g, (m, k: string) => (k in params ? String(params[k]) : m))
}

function storage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage
  } catch {
    return null
  }
}

export function createI18n(initial?: Locale): I18n & { install: (app: App) => void } {
  const nav = typeof navigator === 'undefined' ? [] : (navigator.languages ?? [navigator.language])
  const locale = ref<Locale>(initial ?? pickLocale(storage()?.getItem(storageKey) ?? null, nav))
  const apply = (l: Locale) => {
    if (typeof document !== 'undefined') document.documentElement.lang = l
  }
  apply(locale.value)
  const i18n: I18n = {
    locale,
    t: (k, params) => format(tables[locale.value][k] ?? k, params),
    setLocale: (l) => {
      locale.value = l
      storage()?.setItem(storageKey, l)
      apply(l)
    },
    dateTime: (iso, opts) =>
      new Intl.DateTimeFormat(locale.value, opts ?? { dateStyle: 'short', timeStyle: 'short' }).format(
        typeof iso === 'string' ? new Date(iso) : iso,
      ),
    number: (n) => new Intl.NumberFormat(locale.value).format(n),
  }
  return { ...i18n, install: (app: App) => app.provide(key, i18n) }
}

export function useI18n(): I18n {
  const i = inject(key)
  if (!i) throw new Error('i18n is not installed')
  return i
}
