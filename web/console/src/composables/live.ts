// The live side of the console: one event stream per signed-in tab, shared by
// every screen, and the ARIA live region that reads news out.
import { inject, ref, type App, type InjectionKey, type Ref } from 'vue'
import type { Schemas } from '../api/client'
import { Stream, type StreamEvent, type StreamStatus } from '../api/stream'
import type { Context } from './context'

export type Conversation = Schemas['Conversation']
export type Message = Schemas['Message']

/** sb.conversation.changed.v1 */
export interface ChangedData {
  action: string
  actor: { kind: string; id?: string }
  from_state?: string
  to_state?: string
  reason?: string
  data?: Record<string, unknown>
  conversation: Conversation
}

/** sb.conversation.message.v1 and sb.conversation.message_translated.v1 */
export interface MessageData {
  message: Message
  conversation: { id: string; state: Conversation['state']; queue_id: string | null; assignee_ids: string[] }
}

export type NotificationData = Schemas['Notification'] & {
  recipient_id?: string
  conversation?: { id: string; queue_id: string | null; assignee_ids: string[] }
}

export type LiveEvent =
  | { type: 'sb.conversation.changed.v1'; id: string; time: string; data: ChangedData }
  | { type: 'sb.conversation.message.v1'; id: string; time: string; data: MessageData }
  | { type: 'sb.conversation.message_translated.v1'; id: string; time: string; data: MessageData }
  | { type: 'sb.notification.v1'; id: string; time: string; data: NotificationData }

export interface Live {
  status: Ref<StreamStatus>
  /** Milliseconds to add to Date.now() to get the server's clock (from event times). */
  skew: Ref<number>
  on: (f: (e: LiveEvent) => void) => () => void
  onReset: (f: () => void) => () => void
  /** Reads a text out to screen readers (polite, or assertive for what needs an answer now). */
  announce: (text: string, urgent?: boolean) => void
  polite: Ref<string>
  assertive: Ref<string>
  start: () => void
  stop: () => void
}

const key: InjectionKey<Live> = Symbol('live')

export function createLive(ctx: Context): Live & { install: (app: App) => void } {
  const status = ref<StreamStatus>('closed')
  const skew = ref(0)
  const polite = ref('')
  const assertive = ref('')
  const listeners = new Set<(e: LiveEvent) => void>()
  const resets = new Set<() => void>()
  let skewKnown = false

  const stream = new Stream({
    event: (e: StreamEvent) => {
      const at = Date.parse(e.time)
      // An event arrives after its time, never before: the largest offset
      // seen is the closest to the clocks' difference. Replayed events (older
      // than a few seconds) say nothing of the clocks.
      const d = at - Date.now()
      if (!Number.isNaN(at) && d > -5000) {
        skew.value = skewKnown ? Math.max(skew.value, d) : d
        skewKnown = true
      }
      for (const f of listeners) f(e as LiveEvent)
    },
    reset: () => {
      for (const f of resets) f()
    },
    status: (s) => {
      status.value = s
    },
    refresh: () => ctx.api.refresh(),
  })

  // Consecutive identical texts would not be read again: clear, then set.
  // What comes within a second is added to what is being read.
  const last = new Map<Ref<string>, { at: number; text: string }>()
  const say = (target: Ref<string>, text: string) => {
    const prev = last.get(target)
    const now = Date.now()
    const next = prev && now - prev.at < 1000 ? `${prev.text} ${text}` : text
    last.set(target, { at: now, text: next })
    target.value = ''
    setTimeout(() => {
      target.value = next
    }, 50)
  }

  const live: Live = {
    status,
    skew,
    polite,
    assertive,
    on: (f) => {
      listeners.add(f)
      return () => listeners.delete(f)
    },
    onReset: (f) => {
      resets.add(f)
      return () => resets.delete(f)
    },
    announce: (text, urgent) => say(urgent ? assertive : polite, text),
    start: () => {
      if (status.value === 'closed') stream.start()
    },
    stop: () => stream.stop(),
  }
  return { ...live, install: (app: App) => app.provide(key, live) }
}

export function useLive(): Live {
  const l = inject(key)
  if (!l) throw new Error('live is not installed')
  return l
}
