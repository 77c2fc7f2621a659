// The inbox's rules, kept pure so that they are tested without a browser:
// which tab a state belongs to, whether a conversation passes the filters,
// and where an updated conversation goes in a FIFO list.
import type { Schemas } from '../api/client'

export type Conversation = Schemas['Conversation']
export type State = Schemas['ConversationState']
export type Channel = Schemas['Channel']

export const tabs = ['received', 'in_progress', 'answered', 'deferred', 'help_requested', 'done'] as const
export type Tab = (typeof tabs)[number]

const tabStates: Record<Tab, State[]> = {
  received: ['new', 'offered'],
  in_progress: ['assigned', 'closing'],
  answered: ['answered'],
  deferred: ['deferred'],
  help_requested: ['help_requested', 'external'],
  done: ['done'],
}

export function isTab(s: unknown): s is Tab {
  return typeof s === 'string' && (tabs as readonly string[]).includes(s)
}

export function tabOf(state: State): Tab {
  for (const t of tabs) if (tabStates[t].includes(state)) return t
  return 'received'
}

/** The list filters of [001]/[002], as GET /v1/conversations takes them (tab aside). */
export interface Filters {
  channel?: Channel
  channel_account_id?: string
  queue_id?: string
  assignee_id?: string
  tag?: string
  language?: string
  flagged?: boolean
  unread?: boolean
  last_writer?: 'customer' | 'agent'
  from?: string
  to?: string
  q?: string
}

export const filterKeys = [
  'channel',
  'channel_account_id',
  'queue_id',
  'assignee_id',
  'tag',
  'language',
  'flagged',
  'unread',
  'last_writer',
  'from',
  'to',
  'q',
] as const satisfies readonly (keyof Filters)[]

/** Reads the filters from a route's query (strings), ignoring what is not one. */
export function filtersFromQuery(q: Record<string, unknown>): Filters {
  const f: Filters = {}
  const str = (k: string) => (typeof q[k] === 'string' && q[k] !== '' ? (q[k] as string) : undefined)
  const channel = str('channel')
  if (channel === 'chat' || channel === 'email' || channel === 'sms') f.channel = channel
  for (const k of ['channel_account_id', 'queue_id', 'assignee_id', 'tag', 'language', 'from', 'to', 'q'] as const) {
    const v = str(k)
    if (v !== undefined) f[k] = v
  }
  for (const k of ['flagged', 'unread'] as const) {
    const v = str(k)
    if (v === 'true') f[k] = true
    else if (v === 'false') f[k] = false
  }
  const lw = str('last_writer')
  if (lw === 'customer' || lw === 'agent') f.last_writer = lw
  return f
}

export function filtersToQuery(f: Filters): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of filterKeys) {
    const v = f[k]
    if (v !== undefined && v !== '') out[k] = String(v)
  }
  return out
}

/**
 * Whether a conversation belongs in the list: its tab and every filter but
 * the full-text search, which only the server can answer (undefined then).
 */
export function matches(c: Conversation, tab: Tab, f: Filters): boolean | undefined {
  if (tabOf(c.state) !== tab) return false
  if (f.channel && c.channel !== f.channel) return false
  if (f.channel_account_id && c.channel_account_id !== f.channel_account_id) return false
  if (f.queue_id === 'none' ? c.queue_id !== null : f.queue_id && c.queue_id !== f.queue_id) return false
  if (f.assignee_id && !c.assignee_ids.includes(f.assignee_id)) return false
  if (f.tag) {
    const i = f.tag.indexOf(':')
    const list = f.tag.slice(0, i)
    const value = f.tag.slice(i + 1)
    if ((c.tags as Record<string, string>)[list] !== value) return false
  }
  if (f.language && c.language !== f.language) return false
  if (f.flagged !== undefined && c.flagged !== f.flagged) return false
  if (f.unread !== undefined && c.unread !== f.unread) return false
  if (f.last_writer && c.last_writer !== f.last_writer) return false
  if (f.from && Date.parse(c.started_at) < Date.parse(f.from)) return false
  if (f.to && Date.parse(c.started_at) >= Date.parse(f.to)) return false
  if (f.q) return undefined
  return true
}

/** The inbox order: oldest start first, then by id (the server's order). */
export function fifo(a: Conversation, b: Conversation): number {
  const d = Date.parse(a.started_at) - Date.parse(b.started_at)
  if (d !== 0) return d
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/**
 * Applies a newer version of a conversation to a sorted list: replaced, inserted
 * in order, or removed when it no longer belongs. An older version than the
 * one held is ignored (events may be replayed after a resume). When the list
 * is one page of more (hasMore), a conversation that would sort after its end
 * is left to the next page.
 */
export function upsert(list: Conversation[], c: Conversation, belongs: boolean, hasMore = false): Conversation[] {
  const i = list.findIndex((x) => x.id === c.id)
  const held = i >= 0 ? list[i] : undefined
  if (held && held.version > c.version) return list
  const rest = i >= 0 ? [...list.slice(0, i), ...list.slice(i + 1)] : list.slice()
  if (!belongs) return i >= 0 ? rest : list
  let at = rest.findIndex((x) => fifo(c, x) < 0)
  if (at < 0) {
    if (hasMore && !held) return list
    at = rest.length
  }
  rest.splice(at, 0, c)
  return rest
}
