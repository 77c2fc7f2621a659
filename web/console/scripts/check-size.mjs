// Fails the build when the JavaScript the browser loads before the first
// screen (the entry chunk and its static imports) exceeds the budget, gzipped.
// Lazily loaded routes are not counted.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const budget = 150 * 1024
const dist = new URL('../dist/', import.meta.url)
const html = readFileSync(new URL('index.html', dist), 'utf8')

const initial = new Set()
for (const m of html.matchAll(/<(?:script|link)[^>]+(?:src|href)="\/?([^"]+\.js)"/g)) initial.add(m[1])
if (initial.size === 0) {
  console.error('check-size: no script found in dist/index.html')
  process.exit(1)
}

let total = 0
for (const file of initial) {
  const size = gzipSync(readFileSync(new URL(file, dist)), { level: 9 }).length
  total += size
  console.log(`check-size: ${file} ${(size / 1024).toFixed(1)} KB gzipped`)
}
const verdict = total <= budget ? 'ok' : 'over budget'
console.log(`check-size: initial JavaScript ${(total / 1024).toFixed(1)} KB gzipped (budget ${budget / 1024} KB): ${verdict}`)
if (total > budget) process.exit(1)
