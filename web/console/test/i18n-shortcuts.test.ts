import { describe, expect, test } from 'vitest'
import { comboOf, createShortcuts, isTyping, keyCaps } from '../src/composables/shortcuts'
import { en } from '../src/i18n/en'
import { fr } from '../src/i18n/fr'
import { format, pickLocale } from '../src/i18n'

describe('i18n', () => {
  test('French by default when the browser prefers it, else English; a choice is remembered', () => {
    expect(pickLocale(null, ['fr-FR', 'en'])).toBe('fr')
    expect(pickLocale(null, ['de-DE', 'en-GB'])).toBe('en')
    expect(pickLocale(null, ['de'])).toBe('en')
    expect(pickLocale('fr', ['en'])).toBe('fr')
    expect(pickLocale('xx', ['fr'])).toBe('fr')
  })
  test('both tables have the same keys, none empty, the same placeholders', () => {
    expect(Object.keys(fr).sort()).toEqual(Object.keys(en).sort())
    const holes = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
    for (const [k, v] of Object.entries(en)) {
      const f = fr[k as keyof typeof en]
      expect(f, k).not.toBe('')
      expect(holes(f), k).toEqual(holes(v))
    }
  })
  test('format fills placeholders and leaves unknown ones', () => {
    expect(format('{n} / {max}', { n: 3, max: 300 })).toBe('3 / 300')
    expect(format('hello {who}', {})).toBe('hello {who}')
  })
})

describe('shortcuts', () => {
  const key = (k: string, o: Partial<KeyboardEvent> = {}, target: unknown = null) =>
    ({ key: k, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, isComposing: false, defaultPrevented: false, target, preventDefault: () => {}, ...o }) as KeyboardEvent

  test('names key presses', () => {
    expect(comboOf(key('J'))).toBe('j')
    expect(comboOf(key('?', { shiftKey: true }))).toBe('?')
    expect(comboOf(key('Enter', { ctrlKey: true }))).toBe('mod+Enter')
    expect(comboOf(key('Escape', { shiftKey: true }))).toBe('shift+Escape')
    expect(keyCaps('g i')).toEqual([['g'], ['i']])
    expect(keyCaps('mod+Enter')).toEqual([['Ctrl', 'Enter']])
  })

  test('runs single keys, sequences, and chords while typing only when allowed', () => {
    let now = 0
    const s = createShortcuts(() => now)
    const ran: string[] = []
    s.add([
      { keys: 'j', label: 'keys.next', group: 'keys.group.inbox', run: () => ran.push('j') },
      { keys: 'g i', label: 'nav.inbox', group: 'keys.group.go', run: () => ran.push('gi') },
      { keys: 'mod+Enter', label: 'composer.send', group: 'keys.group.conversation', run: () => ran.push('send'), whenTyping: true },
    ])
    const textarea = { tagName: 'TEXTAREA', isContentEditable: false }
    expect(isTyping(textarea as unknown as EventTarget)).toBe(true)
    s.handle(key('j'))
    s.handle(key('j', {}, textarea))
    s.handle(key('g'))
    now = 500
    s.handle(key('i'))
    s.handle(key('g'))
    now = 5000
    s.handle(key('i'))
    s.handle(key('Enter', { ctrlKey: true }, textarea))
    expect(ran).toEqual(['j', 'gi', 'send'])
  })

  test('the last registered wins, and removing restores the previous', () => {
    const s = createShortcuts()
    const ran: string[] = []
    s.add([{ keys: 'Escape', label: 'app.close', group: 'keys.group.global', run: () => ran.push('page') }])
    const off = s.add([{ keys: 'Escape', label: 'app.close', group: 'keys.group.global', run: () => ran.push('dialog') }])
    s.handle(key('Escape'))
    off()
    s.handle(key('Escape'))
    expect(ran).toEqual(['dialog', 'page'])
  })
})
