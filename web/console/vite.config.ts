/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The dev server forwards the API to a local switchboard (make run) so the
// console and the API share one origin, as they do when the binary serves both.
const api = process.env.SB_CONSOLE_API ?? 'http://localhost:8080'

export default defineConfig({
  plugins: [vue()],
  server: {
    proxy: {
      '/v1': { target: api, changeOrigin: false },
      '/openapi.json': { target: api },
      '/healthz': { target: api },
    },
  },
  build: {
    outDir: 'dist',
    // emptyOutDir removes dist/.keep too; scripts/keep-dist.mjs puts it back.
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // Keeps the CSP free of inline code: no inlined module preload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
  },
})
