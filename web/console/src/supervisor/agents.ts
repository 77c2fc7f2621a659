// Totals over the agents in routing, for the supervision screen's figures.
import type { Schemas } from '../api/client'

export interface AgentTotals {
  online: number
  away: number
  offline: number
  /** Online or away agents whose heartbeats stopped. */
  disconnected: number
  held: number
  load: number
  /** The capacity of the agents who take work (online). */
  capacity: number
  missed: number
}

export function summarise(agents: readonly Schemas['AgentRouting'][]): AgentTotals {
  const t: AgentTotals = { online: 0, away: 0, offline: 0, disconnected: 0, held: 0, load: 0, capacity: 0, missed: 0 }
  for (const a of agents) {
    t[a.presence.status]++
    if (!a.connected && a.presence.status !== 'offline') t.disconnected++
    t.held += a.held
    t.missed += a.missed_offers
    if (a.presence.status === 'online') {
      t.load += a.load
      t.capacity += a.capacity
    }
  }
  return t
}
