// The French texts of the admin screens use the same placeholders as the
// English ones (the compiler checks that each key is there).
import { expect, test } from 'vitest'
import { adminEn } from '../../src/admin/i18n/en'
import { adminFr } from '../../src/admin/i18n/fr'

const params = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()

test('French admin texts have the placeholders of the English ones', () => {
  const wrong = Object.entries(adminEn)
    .filter(([k, en]) => params(en).join() !== params(adminFr[k as keyof typeof adminEn]).join())
    .map(([k]) => k)
  expect(wrong).toEqual([])
})
