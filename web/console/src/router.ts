// Routes. Every screen but the login is loaded on demand, so the first
// download holds only the shell.
import { createRouter, createWebHistory, type RouteRecordRaw, type Router } from 'vue-router'
import type { Context } from './composables/context'
import { adminRoutes } from './admin/routes'

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/inbox' },
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
  {
    path: '/inbox/:tab?',
    name: 'inbox',
    component: () => import('./views/InboxView.vue'),
    children: [{ path: 'c/:id', name: 'conversation', component: () => import('./views/ConversationView.vue') }],
  },
  ...adminRoutes,
  { path: '/:rest(.*)*', redirect: '/inbox' },
]

export function createAppRouter(ctx: Context): Router {
  const router = createRouter({ history: createWebHistory(), routes })
  router.beforeEach(async (to) => {
    if (to.meta.public) return true
    if (ctx.me.value) return true
    const me = await ctx.load().catch(() => null)
    if (me) return true
    return { name: 'login', query: to.fullPath === '/' ? {} : { redirect: to.fullPath } }
  })
  return router
}
