// Live updates: Server-Sent Events from /v1/stream.
//
// EventSource reconnects on its own after a network error and sends
// Last-Event-ID, so the server replays what was missed. When it gives up
// (the server answered an error, such as 401 after the session expired), the
// stream refreshes the session and opens a new EventSource with the last id
// received as last_event_id, after a growing delay. Handlers see each event
// once per delivery; a replay after a resume may repeat an event, so they
// apply events by id (upsert), never by counting.

/** The event types the server sends (see the stream operation in openapi.json). */
export const eventTypes = [
  'sb.conversation.changed.v1',
  'sb.conversation.message.v1',
  'sb.conversation.message_translated.v1',
  'sb.notification.v1',
] as const

export type EventType = (typeof eventTypes)[number]

export interface StreamEvent<T = unknown> {
  type: EventType
  id: string
  time: string
  data: T
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'closed'

export interface StreamHandlers {
  event: (e: StreamEvent) => void
  /** The server lost track of what this client missed: reload the lists. */
  reset?: () => void
  status?: (s: StreamStatus) => void
  /** Called before reopening after the server closed the stream; false stops. */
  refresh?: () => Promise<boolean>
}

interface EventSourceLike {
  readonly readyState: number
  onerror: ((ev: Event) => unknown) | null
  onopen: ((ev: Event) => unknown) | null
  addEventListener(type: string, l: (ev: MessageEvent) => void): void
  close(): void
}

export type EventSourceFactory = (url: string) => EventSourceLike

export interface StreamOptions {
  url?: string
  factory?: EventSourceFactory
  /** Delays between reopenings, in ms; the last one repeats. */
  backoff?: number[]
  setTimeout?: (f: () => void, ms: number) => unknown
}

const CLOSED = 2

export class Stream {
  private es: EventSourceLike | null = null
  private lastId = ''
  private attempts = 0
  private stopped = false
  private readonly url: string
  private readonly factory: EventSourceFactory
  private readonly backoff: number[]
  private readonly timer: (f: () => void, ms: number) => unknown
  private readonly h: StreamHandlers

  constructor(h: StreamHandlers, o: StreamOptions = {}) {
    this.h = h
    this.url = o.url ?? '/v1/stream'
    this.factory = o.factory ?? ((u) => new EventSource(u, { withCredentials: true }))
    this.backoff = o.backoff ?? [1000, 2000, 5000, 10000, 30000]
    this.timer = o.setTimeout ?? ((f, ms) => setTimeout(f, ms))
  }

  /** The id of the last event received: where a new connection resumes. */
  get lastEventId(): string {
    return this.lastId
  }

  start(): void {
    this.stopped = false
    this.open()
  }

  stop(): void {
    this.stopped = true
    this.es?.close()
    this.es = null
    this.h.status?.('closed')
  }

  private open(): void {
    const url = this.lastId ? `${this.url}?last_event_id=${encodeURIComponent(this.lastId)}` : this.url
    this.h.status?.(this.attempts === 0 ? 'connecting' : 'reconnecting')
    const es = this.factory(url)
    this.es = es
    const onEvent = (ev: MessageEvent) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId
      let parsed: StreamEvent
      try {
        parsed = JSON.parse(String(ev.data)) as StreamEvent
      } catch {
        return
      }
      this.h.event(parsed)
    }
    for (const t of eventTypes) es.addEventListener(t, onEvent)
    es.addEventListener('ready', (ev) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId
      this.attempts = 0
      this.h.status?.('live')
    })
    es.addEventListener('reset', (ev) => {
      if (ev.lastEventId) this.lastId = ev.lastEventId
      this.h.reset?.()
    })
    es.onerror = () => {
      if (this.stopped || es !== this.es) return
      if (es.readyState !== CLOSED) {
        // EventSource retries by itself, with Last-Event-ID.
        this.h.status?.('reconnecting')
        return
      }
      es.close()
      this.es = null
      this.reopen()
    }
  }

  private reopen(): void {
    const delay = this.backoff[Math.min(this.attempts, this.backoff.length - 1)] ?? 1000
    this.attempts++
    this.h.status?.('reconnecting')
    this.timer(() => {
      if (this.stopped) return
      const go = this.h.refresh ? this.h.refresh() : Promise.resolve(true)
      void go.then((ok) => {
        if (this.stopped) return
        if (ok) this.open()
        else this.stop()
      })
    }, delay)
  }
}
