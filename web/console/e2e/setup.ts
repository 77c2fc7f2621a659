// The team of the browser tests, set up through the API as an admin would in
// the admin screens: two push queues, two agents, a supervisor, a template
// with a keyword, and smart close on chat.
import { api, createTenant, password, type Tenant } from './harness'

export interface Team {
  t: Tenant
  support: string
  escalation: string
  agent1: { id: string; email: string }
  agent2: { id: string; email: string }
  supervisor: { id: string; email: string }
}

export async function setUpTeam(name: string): Promise<Team> {
  const t = createTenant(name)
  const tok = t.adminToken
  // Smart close on chat, answered by nobody within 3 s.
  await api(tok, 'PUT', '/v1/admin/automation', {
    channels: { chat: true },
    smart_close: {
      timeout_minutes: 0.05,
      texts: { chat: { question: 'Avez-vous besoin d’autre chose, {{customer_name}} ?', follow_up: 'Dites-nous en plus.', yes_label: 'Oui', no_label: 'Non' } },
    },
  })
  const queue = async (name: string) => {
    const q = await api<{ id: string }>(tok, 'POST', '/v1/admin/queues', { name })
    await api(tok, 'PUT', `/v1/admin/queues/${q.id}/routing`, { mode: 'push', offer_seconds: 60 })
    return q.id
  }
  const support = await queue('Support')
  const escalation = await queue('Escalation')
  // New chat conversations go to Support, and so are offered.
  const accounts = await api<{ items: { id: string; channel: string }[] }>(tok, 'GET', '/v1/admin/channel-accounts')
  for (const a of accounts.items.filter((a) => a.channel === 'chat')) {
    await api(tok, 'PUT', `/v1/admin/channel-accounts/${a.id}/routing`, { default_queue_id: support })
  }
  const suffix = t.id.slice(0, 8)
  const user = async (name: string, role: string, queues: string[]) => {
    const email = `${name.toLowerCase()}-${suffix}@acme.test`
    const u = await api<{ id: string }>(tok, 'POST', '/v1/admin/users', { email, name, role, queue_ids: queues, capacity: 3, languages: ['fr', 'en'], password })
    return { id: u.id, email }
  }
  const agent1 = await user('Alice', 'agent', [support])
  const agent2 = await user('Bruno', 'agent', [escalation])
  const supervisor = await user('Sophie', 'supervisor', [])
  await api(tok, 'POST', '/v1/admin/templates', { name: 'Greeting', keyword: 'hello', bodies: {
      chat: { text: 'Bonjour {{customer_name}}, je regarde votre commande.' },
      email: { text: 'Bonjour {{customer_name}},\n\nje regarde votre commande.' },
    },
  })
  return { t, support, escalation, agent1, agent2, supervisor }
}
