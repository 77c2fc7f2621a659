// The header's links to the supervisor and admin screens, each shown to the
// users whose permissions (GET /v1/me) open something behind it.
import type { Context } from '../composables/context'
import type { NavItem } from '../nav'
import { adminSections } from './sections'

/** Supervisors: help requests, agents, and the questions asked of them. */
export const supervises = (c: Context) => c.can('answer_help_requests') || c.can('see_all')

export const adminNav: NavItem[] = [
  { id: 'supervision', to: '/supervision', label: 'nav.supervision', key: 's', show: supervises },
  // Anyone may be asked as an expert: agents without the supervision screen find their questions here.
  { id: 'questions', to: '/supervision/questions', label: 'nav.questions', key: 'q', show: (c) => c.me.value?.user_id !== undefined && !supervises(c) },
  { id: 'admin', to: '/admin', label: 'nav.admin', key: 'a', show: (c) => adminSections.some((s) => s.show(c)) },
]
