// "5 minutes ago", "2 hours ago": how long something has waited, in the
// user's language, at the largest unit that fits.

const units: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
]

export function ago(iso: string, now: number, locale: string): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  const rtf = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  for (const [unit, size] of units) {
    if (seconds >= size) return rtf.format(-Math.floor(seconds / size), unit)
  }
  return rtf.format(0, 'second')
}
