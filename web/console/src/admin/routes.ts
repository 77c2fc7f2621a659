// The supervisor and admin routes, every screen loaded on demand (the first
// download of the console stays small).
import type { RouteRecordRaw } from 'vue-router'

export const adminRoutes: RouteRecordRaw[] = [
  {
    path: '/supervision',
    component: () => import('../supervisor/SupervisionView.vue'),
    children: [
      { path: '', name: 'supervision', redirect: { name: 'supervision-help' } },
      { path: 'help', name: 'supervision-help', component: () => import('../supervisor/HelpRequestsView.vue') },
      { path: 'questions', name: 'supervision-questions', component: () => import('../supervisor/ExpertQuestionsView.vue') },
      { path: 'agents', name: 'supervision-agents', component: () => import('../supervisor/AgentsView.vue') },
    ],
  },
  {
    path: '/admin',
    component: () => import('./views/AdminLayout.vue'),
    children: [
      { path: '', name: 'admin', component: () => import('./views/AdminHome.vue') },
      { path: 'queues', name: 'admin-queues', component: () => import('./views/QueuesView.vue') },
      { path: 'users', name: 'admin-users', component: () => import('./views/UsersView.vue') },
      { path: 'skills', name: 'admin-skills', component: () => import('./views/SkillsView.vue') },
      { path: 'tag-lists', name: 'admin-tag-lists', component: () => import('./views/TagListsView.vue') },
      { path: 'templates', name: 'admin-templates', component: () => import('./views/TemplatesView.vue') },
      { path: 'waiting-messages', name: 'admin-waiting-messages', component: () => import('./views/WaitingMessagesView.vue') },
      { path: 'mailboxes', name: 'admin-mailboxes', component: () => import('./views/MailboxesView.vue') },
      { path: 'sms-accounts', name: 'admin-sms-accounts', component: () => import('./views/SmsAccountsView.vue') },
      { path: 'chat-channels', name: 'admin-chat-channels', component: () => import('./views/ChatChannelsView.vue') },
    ],
  },
]
