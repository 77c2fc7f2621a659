// The admin sections, with the permission each needs (the API's).
import type { Context } from '../composables/context'
import type { MessageKey } from '../i18n'

export interface AdminSection {
  /** The route path under /admin, and the link's data-testid: admin-section-<id>. */
  id: string
  label: MessageKey
  show: (c: Context) => boolean
}

const settings = (c: Context) => c.can('manage_settings')

export const adminSections: AdminSection[] = [
  { id: 'queues', label: 'admin.queues', show: settings },
  { id: 'users', label: 'admin.users', show: (c) => c.can('manage_users') },
  { id: 'skills', label: 'admin.skills', show: settings },
  { id: 'tag-lists', label: 'admin.tag_lists', show: settings },
  { id: 'templates', label: 'admin.templates', show: settings },
  { id: 'waiting-messages', label: 'admin.waiting_messages', show: (c) => c.can('manage_automation') },
  { id: 'mailboxes', label: 'admin.mailboxes', show: settings },
  { id: 'sms-accounts', label: 'admin.sms_accounts', show: settings },
  { id: 'chat-channels', label: 'admin.chat_channels', show: settings },
]
