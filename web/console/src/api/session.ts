// The browser session routes (cookie authentication). They are typed here by
// hand from the console contract until the OpenAPI document describes them.
import type { Client, Schemas } from './client'

export type Me = Schemas['Me']

export interface Session {
  user: Me
  expires_at: string
}

export interface Credentials {
  tenant_id: string
  email: string
  password: string
}

export function login(api: Client, c: Credentials): Promise<Session> {
  return api.raw<Session>('POST', '/v1/auth/session', c, false)
}

export function logout(api: Client): Promise<void> {
  return api.raw<void>('DELETE', '/v1/auth/session', undefined, false)
}
