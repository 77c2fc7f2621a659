// Roles and permissions as the API defines them (the Permission schema): each
// role holds the permissions of the one below and more, and nobody grants a
// role or a permission above their own.
import type { Schemas } from '../api/client'

export type Role = Schemas['Role']
export type Permission = Schemas['Permission']

export const roles: Role[] = ['agent', 'supervisor', 'admin']

export const permissions: Permission[] = [
  'moderate',
  'answer_help_requests',
  'bypass_queue',
  'assign_others',
  'see_all',
  'manage_automation',
  'manage_settings',
  'manage_users',
  'manage_data',
]

const supervisor: Permission[] = ['answer_help_requests', 'bypass_queue', 'assign_others', 'see_all', 'manage_automation']

/** The permissions a role gives by itself. */
export function rolePermissions(role: Role): Permission[] {
  if (role === 'admin') return [...permissions]
  if (role === 'supervisor') return [...supervisor]
  return []
}

/** The roles someone with the given role may give: their own and those below. */
export function grantableRoles(own: Role): Role[] {
  return roles.slice(0, roles.indexOf(own) + 1)
}

/**
 * The extra permissions worth keeping for a role: those the role does not give
 * already, in the usual order (changing a user's role drops the grants the new
 * role makes useless).
 */
export function extraPermissions(role: Role, granted: readonly Permission[]): Permission[] {
  const given = new Set(rolePermissions(role))
  const want = new Set(granted)
  return permissions.filter((p) => want.has(p) && !given.has(p))
}
