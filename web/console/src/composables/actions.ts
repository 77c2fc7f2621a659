// Which actions the conversation page offers, from the conversation's state,
// who holds it and the user's permissions. The server checks each again;
// this only spares agents buttons that would be refused.
import type { Schemas } from '../api/client'

type Conversation = Schemas['Conversation']
type Permission = Schemas['Permission']

export interface Available {
  take: boolean
  accept: boolean
  reply: boolean
  archive: boolean
  route: boolean
  transfer: boolean
  release: boolean
  complete: boolean
  resume: boolean
  defer: boolean
  help: boolean
  expert: boolean
  lock: boolean
  assignOthers: boolean
  bot: boolean
  sendByEmail: boolean
}

export function available(c: Conversation, me: string | undefined, can: (p: Permission) => boolean): Available {
  const mine = !!me && c.assignee_ids.includes(me)
  const supervisor = can('assign_others')
  const holder = mine || supervisor
  const s = c.state
  const held = s === 'assigned' || s === 'answered' || s === 'closing'
  return {
    take: !!me && (s === 'new' || s === 'answered' || (s === 'offered' && mine)) && !(s === 'answered' && mine),
    accept: s === 'offered' && mine,
    reply: mine && (s === 'assigned' || s === 'answered' || s === 'closing') && !c.locked,
    archive: (s === 'new' || s === 'offered' || s === 'assigned' || s === 'answered') && (s === 'new' || holder),
    route: s !== 'done' && s !== 'help_requested' && s !== 'external' && (s === 'new' || holder),
    transfer: (held || s === 'new') && holder,
    release: s === 'assigned' && holder,
    complete: (s === 'assigned' || s === 'answered') && holder,
    resume: s === 'done' || s === 'closing' || s === 'deferred',
    defer: s === 'assigned' && holder,
    help: s === 'assigned' && holder,
    expert: s !== 'done' && holder,
    lock: holder,
    assignOthers: supervisor && s !== 'done',
    bot: c.channel === 'chat' && holder,
    sendByEmail: can('manage_data'),
  }
}
