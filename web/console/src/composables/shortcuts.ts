// Keyboard shortcuts: screens register theirs while they are shown; one
// listener dispatches them; the help dialog ("?") lists those in force.
import { inject, onBeforeUnmount, onMounted, shallowRef, type App, type InjectionKey, type ShallowRef } from 'vue'
import type { MessageKey } from '../i18n'

export interface Shortcut {
  /** One key ("j", "?", "Escape"), a chord ("mod+Enter", "alt+a") or a sequence ("g i"). */
  keys: string
  label: MessageKey
  group: MessageKey
  run: (e: KeyboardEvent) => void
  /** Also while typing in a text field (for chords only). */
  whenTyping?: boolean
}

export interface Shortcuts {
  active: ShallowRef<Shortcut[]>
  add: (list: Shortcut[]) => () => void
  handle: (e: KeyboardEvent) => boolean
}

const key: InjectionKey<Shortcuts> = Symbol('shortcuts')

/** Whether the event comes from a place where keys type text. */
export function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null
  if (!el || typeof el.tagName !== 'string') return false
  if (el.isContentEditable) return true
  const tag = el.tagName
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true
  if (tag === 'INPUT') {
    const type = (el as HTMLInputElement).type
    return !['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color', 'file'].includes(type)
  }
  return false
}

/** The name of a key press: modifiers (mod = Ctrl or Cmd, alt, shift for non-characters) and key. */
export function comboOf(e: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'altKey' | 'shiftKey'>): string {
  const parts: string[] = []
  if (e.ctrlKey || e.metaKey) parts.push('mod')
  if (e.altKey) parts.push('alt')
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key
  // Shift is in the character already ("?", "A"), named only for other keys.
  if (e.shiftKey && e.key.length > 1) parts.push('shift')
  parts.push(k === ' ' ? 'Space' : k === '?' ? '?' : k)
  return parts.join('+')
}

export function createShortcuts(now: () => number = () => Date.now()): Shortcuts & { install: (app: App) => void } {
  const active = shallowRef<Shortcut[]>([])
  let pending = ''
  let pendingAt = 0

  const handle = (e: KeyboardEvent): boolean => {
    if (e.isComposing || e.defaultPrevented) return false
    const combo = comboOf(e)
    const typing = isTyping(e.target)
    const chord = combo.includes('+')
    const candidates = active.value.filter((s) => !typing || (s.whenTyping && chord))
    const seq = pending && now() - pendingAt < 1200 ? `${pending} ${combo}` : ''
    pending = ''
    // The last registered wins: a dialog's Escape before the page's.
    for (const list of [seq ? candidates.filter((s) => s.keys === seq) : [], candidates.filter((s) => s.keys === combo)]) {
      const s = list[list.length - 1]
      if (s) {
        e.preventDefault()
        s.run(e)
        return true
      }
    }
    if (!typing && !chord && candidates.some((s) => s.keys.startsWith(`${combo} `))) {
      pending = combo
      pendingAt = now()
      return true
    }
    return false
  }

  const s: Shortcuts = {
    active,
    add: (list) => {
      active.value = [...active.value, ...list]
      return () => {
        active.value = active.value.filter((x) => !list.includes(x))
      }
    },
    handle,
  }
  return { ...s, install: (app: App) => app.provide(key, s) }
}

export function useShortcutRegistry(): Shortcuts {
  const s = inject(key)
  if (!s) throw new Error('shortcuts are not installed')
  return s
}

/** Registers shortcuts for as long as the calling component is mounted. */
export function useShortcuts(list: Shortcut[]): void {
  const reg = useShortcutRegistry()
  let off: (() => void) | null = null
  onMounted(() => {
    off = reg.add(list)
  })
  onBeforeUnmount(() => off?.())
}

/** How a shortcut's keys read in the help dialog, each key apart. */
export function keyCaps(keys: string): string[][] {
  return keys.split(' ').map((step) =>
    step.split('+').map((k) => (k === 'mod' ? 'Ctrl' : k === 'alt' ? 'Alt' : k === 'shift' ? 'Shift' : k)),
  )
}
