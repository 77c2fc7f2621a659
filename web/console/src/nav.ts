// The main navigation: each entry shows when its test passes for the signed-in user.
import type { MessageKey } from './i18n'
import type { Context } from './composables/context'
import { adminNav } from './admin/nav'

export interface NavItem {
  /** Names the link's data-testid: nav-<id>. */
  id: string
  to: string
  label: MessageKey
  /** Keyboard shortcut after "g" (g then i: the inbox). */
  key?: string
  show: (c: Context) => boolean
}

export const navItems: NavItem[] = [
  { id: 'inbox', to: '/inbox', label: 'nav.inbox', key: 'i', show: (c) => c.me.value !== null },
  ...adminNav,
]
