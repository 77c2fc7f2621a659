// The supervision screen's logic: which help request waits, where an answer
// sent the conversation, which stream events reload the lists, the agents'
// totals and the waiting times.
import { describe, expect, test } from 'vitest'
import type { Schemas } from '../../src/api/client'
import type { StreamEvent } from '../../src/api/stream'
import { summarise } from '../../src/supervisor/agents'
import { byRequestTime, outcomeOf, touchesHelp, touchesQuestions, waitingRequest, type Pending } from '../../src/supervisor/store'
import { ago } from '../../src/supervisor/time'

const req = (id: string, created_at: string, answered_at?: string): Schemas['HelpRequest'] => ({
  id,
  conversation_id: 'c',
  requester_id: 'u1',
  comment: 'help',
  created_at,
  ...(answered_at ? { answered_at } : {}),
})

test('the waiting request is the latest unanswered one', () => {
  expect(waitingRequest([])).toBeUndefined()
  expect(waitingRequest([req('a', '2025-01-01T00:00:00Z', '2025-01-01T01:00:00Z')])).toBeUndefined()
  expect(waitingRequest([req('a', '2025-01-01T00:00:00Z', '2025-01-01T01:00:00Z'), req('b', '2025-01-02T00:00:00Z')])?.id).toBe('b')
})

test('requests are shown oldest first', () => {
  const p = (id: string, at: string) => ({ request: req(id, at) }) as Pending
  expect([p('late', '2025-01-02T00:00:00Z'), p('early', '2025-01-01T00:00:00Z')].sort(byRequestTime).map((x) => x.request.id)).toEqual(['early', 'late'])
})

test('an answer goes back to the requester when they hold it again, else to the queue', () => {
  const c = (state: Schemas['ConversationState'], assignee_ids: string[]) => ({ state, assignee_ids }) as unknown as Schemas['Conversation']
  expect(outcomeOf(c('assigned', ['u1']), 'u1')).toBe('requester')
  expect(outcomeOf(c('new', []), 'u1')).toBe('queue')
  expect(outcomeOf(c('assigned', ['u2']), 'u1')).toBe('queue')
})

describe('stream events', () => {
  const ev = (type: StreamEvent['type'], data: unknown): StreamEvent => ({ type, id: '1', time: '', data })
  test('changes into or out of help_requested reload the help requests', () => {
    expect(touchesHelp(ev('sb.conversation.changed.v1', { from_state: 'assigned', to_state: 'help_requested' }))).toBe(true)
    expect(touchesHelp(ev('sb.conversation.changed.v1', { from_state: 'help_requested', to_state: 'assigned' }))).toBe(true)
    expect(touchesHelp(ev('sb.conversation.changed.v1', { from_state: 'new', to_state: 'assigned' }))).toBe(false)
    expect(touchesHelp(ev('sb.conversation.message.v1', {}))).toBe(false)
  })
  test('a notification of a question reloads the questions', () => {
    expect(touchesQuestions(ev('sb.notification.v1', { kind: 'expert_question' }))).toBe(true)
    expect(touchesQuestions(ev('sb.notification.v1', { kind: 'assigned' }))).toBe(false)
  })
})

test('agent totals count presence, disconnection, holdings and the online load', () => {
  const a = (status: 'online' | 'away' | 'offline', connected: boolean, load: number, capacity: number, held: number, missed: number) =>
    ({ id: status, name: status, presence: { status, since: '' }, connected, load, capacity, held, missed_offers: missed }) as Schemas['AgentRouting']
  expect(summarise([a('online', true, 2.5, 5, 3, 1), a('away', false, 1, 5, 1, 2), a('offline', false, 0, 5, 0, 0), a('online', true, 1, 3, 1, 0)])).toEqual({
    online: 2,
    away: 1,
    offline: 1,
    disconnected: 1,
    held: 5,
    load: 3.5,
    capacity: 8,
    missed: 3,
  })
})

test('ago speaks in the largest unit that fits', () => {
  const now = Date.parse('2025-03-01T12:00:00Z')
  expect(ago('2025-03-01T11:59:30Z', now, 'en')).toBe('now')
  expect(ago('2025-03-01T11:55:00Z', now, 'en')).toBe('5 minutes ago')
  expect(ago('2025-03-01T09:00:00Z', now, 'en')).toBe('3 hours ago')
  expect(ago('2025-02-28T12:00:00Z', now, 'fr')).toBe('hier')
})
