// Starts the real switchboard binary (built with the console embedded) for the
// browser tests: -target=all with embedded Kafka and Redis, on a PostgreSQL
// database of its own and a free port; drops it all at the end.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    base: string
    databaseURL: string
    binary: string
    dataDir: string
  }
}

const root = resolve(import.meta.dirname, '../../..')

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.once('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (typeof a === 'object' && a ? ok(a.port) : fail(new Error('no port'))))
    })
  })
}

/** The server PostgreSQL databases are created on (trust auth, as `make test`). */
const pgServer = process.env.SB_TEST_DATABASE_URL ?? 'postgres://127.0.0.1:5432/postgres?sslmode=disable'

function psql(sql: string) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pgServer, '-c', sql], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 30_000 })
}

export default async function setup(project: TestProject) {
  const binary = resolve(process.env.SB_E2E_BINARY ?? join(root, 'bin/switchboard'))
  const name = 'sbe2e_' + randomBytes(6).toString('hex')
  psql(`CREATE DATABASE ${name}`)
  const u = new URL(pgServer)
  u.pathname = '/' + name
  const databaseURL = u.toString()
  const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-console-e2e-'))
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const logs: string[] = []
  const child: ChildProcess = spawn(
    binary,
    ['-target=all', '-data-dir', dataDir, '-http.addr', `127.0.0.1:${port}`, '-log.level', 'warn'],
    {
      // Embedded Kafka and Redis whatever the environment says. The setup
      // calls the API as one admin token far faster than a person: the
      // API's request rates are off (services/inbox tests them).
      env: {
        ...process.env, DATABASE_URL: databaseURL, SB_KAFKA_BROKERS: '', KAFKA_BROKERS: '', SB_REDIS_URL: '', REDIS_URL: '',
        SB_INBOX_API_TOKEN_RATE: '0', SB_INBOX_API_TENANT_RATE: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  child.stdout?.on('data', (b: Buffer) => logs.push(b.toString()))
  child.stderr?.on('data', (b: Buffer) => logs.push(b.toString()))
  let exited = false
  child.on('exit', () => (exited = true))

  const cleanup = async () => {
    if (!exited) {
      child.kill('SIGINT')
      const done = new Promise<void>((ok) => child.once('exit', () => ok()))
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await done
      clearTimeout(t)
    }
    rmSync(dataDir, { recursive: true, force: true })
    try {
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } catch (e) {
      console.error('console e2e: drop database', name, e)
    }
  }

  const deadline = Date.now() + 90_000
  for (;;) {
    if (exited) {
      await cleanup()
      throw new Error(`switchboard exited before it was ready:\n${logs.join('')}`)
    }
    if (Date.now() > deadline) {
      await cleanup()
      throw new Error(`switchboard not ready within 90 s:\n${logs.join('')}`)
    }
    try {
      const r = await fetch(base + '/readyz', { signal: AbortSignal.timeout(2000) })
      if (r.ok) break
    } catch {
      // not listening yet
    }
    await new Promise((ok) => setTimeout(ok, 100))
  }
  const index = await (await fetch(base + '/')).text()
  if (!index.includes('/assets/')) {
    await cleanup()
    throw new Error('the binary serves no built console: run `make console` before building it')
  }

  project.provide('base', base)
  project.provide('databaseURL', databaseURL)
  project.provide('binary', binary)
  project.provide('dataDir', dataDir)
  return async () => {
    if (process.env.SB_E2E_LOGS) console.log(logs.join(''))
    await cleanup()
  }
}
