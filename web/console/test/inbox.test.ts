import { describe, expect, test } from 'vitest'
import { available } from '../src/composables/actions'
import { filtersFromQuery, filtersToQuery, fifo, matches, tabOf, upsert, type Conversation } from '../src/composables/inbox'

function conv(over: Partial<Conversation> = {}): Conversation {
  return {
    id: 'c1',
    contact_id: 'k',
    contact_name: 'Chloé',
    channel: 'email',
    channel_account_id: 'm',
    state: 'new',
    queue_id: 'q1',
    assignee_ids: [],
    priority: 0,
    language: 'fr',
    tags: {},
    flagged: false,
    locked: false,
    ignored: false,
    muted: false,
    unread: true,
    last_writer: 'customer',
    started_at: '2030-01-01T10:00:00Z',
    last_message_at: '2030-01-01T10:00:00Z',
    updated_at: '2030-01-01T10:00:00Z',
    version: 1,
    state_version: 1,
    state_since: '2030-01-01T10:00:00Z',
    bot_blocked: false,
    ...over,
  }
}

describe('tabs and filters', () => {
  test('each state has its tab', () => {
    expect(tabOf('new')).toBe('received')
    expect(tabOf('offered')).toBe('received')
    expect(tabOf('assigned')).toBe('in_progress')
    expect(tabOf('closing')).toBe('in_progress')
    expect(tabOf('external')).toBe('help_requested')
    expect(tabOf('done')).toBe('done')
  })

  test('matches applies every filter but the full-text search', () => {
    const c = conv({ tags: { l1: 'refund' } })
    expect(matches(c, 'received', {})).toBe(true)
    expect(matches(c, 'in_progress', {})).toBe(false)
    expect(matches(c, 'received', { channel: 'sms' })).toBe(false)
    expect(matches(c, 'received', { queue_id: 'none' })).toBe(false)
    expect(matches(conv({ queue_id: null }), 'received', { queue_id: 'none' })).toBe(true)
    expect(matches(c, 'received', { tag: 'l1:refund' })).toBe(true)
    expect(matches(c, 'received', { tag: 'l1:other' })).toBe(false)
    expect(matches(c, 'received', { flagged: true })).toBe(false)
    expect(matches(c, 'received', { unread: true, last_writer: 'customer', language: 'fr' })).toBe(true)
    expect(matches(c, 'received', { from: '2030-01-02T00:00:00Z' })).toBe(false)
    expect(matches(c, 'received', { to: '2030-01-01T10:00:00Z' })).toBe(false)
    expect(matches(c, 'received', { q: 'colis' })).toBeUndefined()
  })

  test('filters go through the URL and back', () => {
    const f = filtersFromQuery({ channel: 'sms', flagged: 'false', unread: 'true', last_writer: 'agent', q: 'colis', bogus: 'x', language: '' })
    expect(f).toEqual({ channel: 'sms', flagged: false, unread: true, last_writer: 'agent', q: 'colis' })
    expect(filtersToQuery(f)).toEqual({ channel: 'sms', flagged: 'false', unread: 'true', last_writer: 'agent', q: 'colis' })
    expect(filtersFromQuery({ channel: 'fax' })).toEqual({})
  })
})

describe('live list updates', () => {
  const a = conv({ id: 'a', started_at: '2030-01-01T09:00:00Z' })
  const b = conv({ id: 'b', started_at: '2030-01-01T10:00:00Z' })
  const c = conv({ id: 'c', started_at: '2030-01-01T11:00:00Z' })

  test('inserts in FIFO order, replaces, removes', () => {
    let list = [a, c]
    list = upsert(list, b, true)
    expect(list.map((x) => x.id)).toEqual(['a', 'b', 'c'])
    list = upsert(list, { ...b, version: 2, flagged: true }, true)
    expect(list[1]?.flagged).toBe(true)
    list = upsert(list, { ...a, version: 2, state: 'assigned' }, false)
    expect(list.map((x) => x.id)).toEqual(['b', 'c'])
  })

  test('ignores an older version replayed after a resume', () => {
    const list = [{ ...a, version: 5, flagged: true }]
    expect(upsert(list, { ...a, version: 4 }, true)[0]?.flagged).toBe(true)
    expect(upsert(list, { ...a, version: 4 }, false)).toHaveLength(1)
  })

  test('leaves to the next page what sorts after a partial list', () => {
    expect(upsert([a, b], c, true, true).map((x) => x.id)).toEqual(['a', 'b'])
    expect(upsert([b, c], a, true, true).map((x) => x.id)).toEqual(['a', 'b', 'c'])
  })

  test('fifo breaks ties by id', () => {
    expect(fifo(conv({ id: 'x' }), conv({ id: 'y' }))).toBeLessThan(0)
  })
})

describe('available actions', () => {
  const none = () => false
  const all = () => true
  test('a new conversation can be taken, archived and routed, not answered', () => {
    const x = available(conv(), 'me', none)
    expect(x.take && x.archive && x.route).toBe(true)
    expect(x.reply || x.complete || x.release || x.defer).toBe(false)
  })
  test('an assigned conversation of mine offers the work actions', () => {
    const x = available(conv({ state: 'assigned', assignee_ids: ['me'] }), 'me', none)
    expect(x.reply && x.transfer && x.release && x.complete && x.defer && x.help && x.expert && x.lock).toBe(true)
    expect(x.take || x.resume || x.assignOthers).toBe(false)
  })
  test("someone else's is read-only for an agent, not for a supervisor", () => {
    const c = conv({ state: 'assigned', assignee_ids: ['other'] })
    expect(available(c, 'me', none).transfer).toBe(false)
    expect(available(c, 'me', all).transfer).toBe(true)
    expect(available(c, 'me', all).reply).toBe(false)
  })
  test('an offer is accepted by its agent only; done and deferred ones resume', () => {
    expect(available(conv({ state: 'offered', assignee_ids: ['me'] }), 'me', none).accept).toBe(true)
    expect(available(conv({ state: 'offered', assignee_ids: ['x'] }), 'me', none).take).toBe(false)
    expect(available(conv({ state: 'done' }), 'me', none).resume).toBe(true)
    expect(available(conv({ state: 'deferred', assignee_ids: ['me'] }), 'me', none).resume).toBe(true)
  })
  test('a locked conversation cannot be answered; bot control is for chat', () => {
    expect(available(conv({ state: 'assigned', assignee_ids: ['me'], locked: true }), 'me', none).reply).toBe(false)
    expect(available(conv({ state: 'assigned', assignee_ids: ['me'] }), 'me', none).bot).toBe(false)
    expect(available(conv({ channel: 'chat', state: 'assigned', assignee_ids: ['me'] }), 'me', none).bot).toBe(true)
  })
})
