import { expect, test } from 'vitest'
import { Stream, type StreamEvent, type StreamStatus } from '../src/api/stream'

// A test double of EventSource: the test dispatches events and errors.
class FakeSource {
  readyState = 0
  onerror: ((ev: Event) => unknown) | null = null
  onopen: ((ev: Event) => unknown) | null = null
  closed = false
  private listeners = new Map<string, ((ev: MessageEvent) => void)[]>()
  constructor(readonly url: string) {}
  addEventListener(type: string, l: (ev: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), l])
  }
  close() {
    this.closed = true
    this.readyState = 2
  }
  emit(type: string, id: string, data: unknown) {
    for (const l of this.listeners.get(type) ?? []) l(new MessageEvent(type, { data: JSON.stringify(data), lastEventId: id }))
  }
  fail(closed: boolean) {
    this.readyState = closed ? 2 : 0
    this.onerror?.(new Event('error'))
  }
}

function setup(refreshOK = true) {
  const sources: FakeSource[] = []
  const events: StreamEvent[] = []
  const statuses: StreamStatus[] = []
  const timers: (() => void)[] = []
  let resets = 0
  let refreshes = 0
  const s = new Stream(
    {
      event: (e) => events.push(e),
      reset: () => resets++,
      status: (x) => statuses.push(x),
      refresh: async () => {
        refreshes++
        return refreshOK
      },
    },
    {
      factory: (url) => {
        const f = new FakeSource(url)
        sources.push(f)
        return f
      },
      setTimeout: (f) => timers.push(f),
    },
  )
  return { s, sources, events, statuses, timers, resets: () => resets, refreshes: () => refreshes }
}

const changed = (id: string) => ({ type: 'sb.conversation.changed.v1', id, time: '2030-01-01T00:00:00Z', data: { action: 'assign' } })
const flush = () => new Promise((r) => setTimeout(r, 0))

test('delivers typed events and goes live on ready', () => {
  const { s, sources, events, statuses } = setup()
  s.start()
  expect(sources[0]?.url).toBe('/v1/stream')
  sources[0]?.emit('sb.conversation.changed.v1', '10', changed('e1'))
  sources[0]?.emit('ready', '', { type: 'ready' })
  expect(events.map((e) => e.id)).toEqual(['e1'])
  expect(s.lastEventId).toBe('10')
  expect(statuses).toEqual(['connecting', 'live'])
})

test('leaves a transient error to EventSource, which resumes by itself', () => {
  const { s, sources, statuses, timers } = setup()
  s.start()
  sources[0]?.fail(false)
  expect(sources).toHaveLength(1)
  expect(timers).toHaveLength(0)
  expect(statuses.at(-1)).toBe('reconnecting')
})

test('reopens after the server closed the stream, from the last event id, after refreshing the session', async () => {
  const { s, sources, timers, refreshes } = setup()
  s.start()
  sources[0]?.emit('sb.conversation.message.v1', '42', changed('e1'))
  sources[0]?.fail(true)
  expect(sources[0]?.closed).toBe(true)
  expect(timers).toHaveLength(1)
  timers[0]?.()
  await flush()
  expect(refreshes()).toBe(1)
  expect(sources[1]?.url).toBe('/v1/stream?last_event_id=42')
})

test('stops when the session cannot be refreshed', async () => {
  const { s, sources, timers, statuses } = setup(false)
  s.start()
  sources[0]?.fail(true)
  timers[0]?.()
  await flush()
  expect(sources).toHaveLength(1)
  expect(statuses.at(-1)).toBe('closed')
})

test('passes reset on and ignores malformed data', () => {
  const { s, sources, events, resets } = setup()
  s.start()
  sources[0]?.emit('reset', '7', { type: 'reset' })
  for (const l of ['sb.notification.v1']) {
    // not JSON
    ;(sources[0] as unknown as { listeners: Map<string, ((ev: MessageEvent) => void)[]> }).listeners.get(l)?.[0]?.(new MessageEvent(l, { data: '{', lastEventId: '8' }))
  }
  expect(resets()).toBe(1)
  expect(events).toHaveLength(0)
  expect(s.lastEventId).toBe('8')
})
