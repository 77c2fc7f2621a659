// Vite empties dist/ before building; dist/.keep is committed so that the Go
// module embedding dist/ compiles without Node. Put it back after every build.
import { writeFileSync } from 'node:fs'

writeFileSync(new URL('../dist/.keep', import.meta.url), '')
