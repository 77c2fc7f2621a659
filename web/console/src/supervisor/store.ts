// What the supervision screen shares between its tabs: the help requests
// waiting for an answer, the questions asked of the user as an expert, the
// names of queues and agents, and the live stream that keeps them current.
import { inject, provide, reactive, ref, type InjectionKey } from 'vue'
import type { Client, Schemas } from '../api/client'
import { Stream, type StreamEvent, type StreamStatus } from '../api/stream'
import { loadAll } from '../admin/composables/list'

export type Conversation = Schemas['Conversation']
export type HelpRequest = Schemas['HelpRequest']
export type ExpertQuestion = Schemas['ExpertQuestion']
export type Agent = Schemas['AgentRouting']

/** A conversation waiting for help, with the request that waits. */
export interface Pending {
  conversation: Conversation
  request: HelpRequest
}

/** The request still waiting among a conversation's help requests: the latest unanswered one. */
export function waitingRequest(items: readonly HelpRequest[]): HelpRequest | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const r = items[i]
    if (r && !r.answered_at) return r
  }
  return undefined
}

/** Oldest request first (FIFO), as the inbox's lists. */
export function byRequestTime(a: Pending, b: Pending): number {
  return a.request.created_at.localeCompare(b.request.created_at)
}

/** Where a help answer sent the conversation, from the conversation it answers with. */
export function outcomeOf(c: Conversation, requester: string): 'requester' | 'queue' {
  return c.state !== 'new' && c.assignee_ids.includes(requester) ? 'requester' : 'queue'
}

/** Whether a stream event may change the supervision lists. */
export function touchesHelp(e: StreamEvent): boolean {
  if (e.type !== 'sb.conversation.changed.v1') return false
  const d = e.data as { from_state?: string; to_state?: string; action?: string }
  return d.from_state === 'help_requested' || d.to_state === 'help_requested' || d.action === 'help_request'
}

export function touchesQuestions(e: StreamEvent): boolean {
  if (e.type !== 'sb.notification.v1') return false
  const kind = (e.data as { kind?: string }).kind
  return kind === 'expert_question'
}

export function createSupervision(api: Client, opts: { help: boolean; agents: boolean }) {
  const names = reactive({ queues: new Map<string, string>(), agents: new Map<string, string>() })
  const help = reactive({ items: [] as Pending[], loading: false, error: null as unknown, loaded: false })
  const questions = reactive({
    items: [] as ExpertQuestion[],
    status: 'open' as 'open' | 'answered',
    loading: false,
    error: null as unknown,
    loaded: false,
    next: undefined as string | undefined,
    openCount: 0,
  })
  const status = ref<StreamStatus>('connecting')
  const listeners = new Set<(e: StreamEvent | null) => void>()

  async function loadNames() {
    const [queues, agents] = await Promise.all([
      loadAll((cursor) => api.get('/v1/admin/queues', { query: { limit: 200, cursor } })).catch(() => []),
      opts.agents ? api.get('/v1/routing/agents').then((r) => r.items).catch(() => []) : Promise.resolve([]),
    ])
    names.queues = new Map(queues.map((q) => [q.id, q.name]))
    names.agents = new Map(agents.map((a) => [a.id, a.name]))
  }

  async function loadHelp() {
    if (!opts.help) return
    help.loading = true
    try {
      const list = await api.get('/v1/conversations', { query: { state: 'help_requested', limit: 200 } })
      const found = await Promise.all(
        list.items.map(async (c) => {
          const r = await api.get('/v1/conversations/{id}/help-requests', { path: { id: c.id } })
          const request = waitingRequest(r.items)
          return request ? { conversation: c, request } : null
        }),
      )
      help.items = found.filter((p): p is Pending => p !== null).sort(byRequestTime)
      help.error = null
    } catch (e) {
      help.error = e
    } finally {
      help.loading = false
      help.loaded = true
    }
  }

  async function answerHelp(p: Pending, text: string): Promise<'requester' | 'queue'> {
    const c = await api.post('/v1/conversations/{id}/help-requests/{request_id}/answer', {
      path: { id: p.conversation.id, request_id: p.request.id },
      body: { text },
    })
    help.items = help.items.filter((x) => x.request.id !== p.request.id)
    return outcomeOf(c, p.request.requester_id)
  }

  async function countOpen() {
    const r = await api.get('/v1/expert-questions', { query: { role: 'expert', status: 'open', limit: 200 } }).catch(() => null)
    if (r) questions.openCount = r.items.length
  }

  async function loadQuestions(cursor?: string) {
    questions.loading = true
    try {
      const r = await api.get('/v1/expert-questions', { query: { role: 'expert', status: questions.status, limit: 50, cursor } })
      questions.items = cursor ? [...questions.items, ...r.items] : r.items
      questions.next = r.next_cursor
      if (questions.status === 'open' && !cursor) questions.openCount = r.items.length
      questions.error = null
    } catch (e) {
      questions.error = e
    } finally {
      questions.loading = false
      questions.loaded = true
    }
    if (questions.status !== 'open') await countOpen()
  }

  async function answerQuestion(q: ExpertQuestion, text: string): Promise<ExpertQuestion> {
    const answered = await api.post('/v1/expert-questions/{id}/answer', { path: { id: q.id }, body: { text } })
    if (questions.status === 'open') questions.items = questions.items.filter((x) => x.id !== q.id)
    questions.openCount = Math.max(0, questions.openCount - 1)
    return answered
  }

  let timer: ReturnType<typeof setTimeout> | undefined
  let wantHelp = false
  let wantQuestions = false
  function later() {
    if (timer) return
    timer = setTimeout(() => {
      timer = undefined
      if (wantHelp) void loadHelp()
      if (wantQuestions) void loadQuestions()
      wantHelp = wantQuestions = false
    }, 400)
  }

  const stream = new Stream({
    event: (e) => {
      if (touchesHelp(e)) wantHelp = true
      if (touchesQuestions(e)) wantQuestions = true
      if (wantHelp || wantQuestions) later()
      for (const l of listeners) l(e)
    },
    reset: () => {
      wantHelp = wantQuestions = true
      later()
      for (const l of listeners) l(null)
    },
    status: (s) => (status.value = s),
    refresh: () => api.refresh(),
  })

  return {
    names,
    help,
    questions,
    status,
    loadNames,
    loadHelp,
    answerHelp,
    loadQuestions,
    answerQuestion,
    /** Hears every stream event (null after a reset); returns the way to stop. */
    listen(l: (e: StreamEvent | null) => void) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    start() {
      stream.start()
    },
    stop() {
      stream.stop()
      if (timer) clearTimeout(timer)
    },
  }
}

export type Supervision = ReturnType<typeof createSupervision>

const key: InjectionKey<Supervision> = Symbol('supervision')

export function provideSupervision(s: Supervision) {
  provide(key, s)
}

export function useSupervision(): Supervision {
  const s = inject(key)
  if (!s) throw new Error('supervision is not provided')
  return s
}
