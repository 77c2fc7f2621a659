import { createApp } from 'vue'
import App from './App.vue'
import { createAlerts } from './composables/alerts'
import { createContext } from './composables/context'
import { createDirectory } from './composables/directory'
import { createLive } from './composables/live'
import { createOffers } from './composables/offers'
import { createShortcuts } from './composables/shortcuts'
import { createI18n } from './i18n'
import { createAppRouter } from './router'
import './styles/main.css'

const i18n = createI18n()
let goLogin = () => {}
const ctx = createContext({ onUnauthorized: () => goLogin() })
const router = createAppRouter(ctx)
goLogin = () => {
  const here = router.currentRoute.value
  if (here.name !== 'login') void router.push({ name: 'login', query: { redirect: here.fullPath, expired: '1' } })
}

createApp(App)
  .use(i18n)
  .use(ctx)
  .use(createLive(ctx))
  .use(createDirectory(ctx))
  .use(createOffers(ctx))
  .use(createAlerts(ctx))
  .use(createShortcuts())
  .use(router)
  .mount('#app')
