// Shared by the Node tests. They run against the packed and installed
// `startgate` package; STARTGATE_REPO points at the repository for the
// registry, the conformance vectors and the scripts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const repo = process.env.STARTGATE_REPO ?? join(import.meta.dirname, '..', '..', '..')
export const registry = join(repo, 'tests', 'conformance', 'registry.toml')
export const adminUrl = process.env.STARTGATE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const alice = {
  id: 'alice',
  isMember: true,
  capabilities: ['inventory.sync', 'restore.execute', 'tenant.manage', 'provider.manage', 'compliance.read'],
}

export function ready(tenantId = 'contoso', id = 'graph', overrides = {}) {
  return {
    tenantId, id, provider: 'microsoft_graph', displayName: 'Microsoft Graph', isDefault: true,
    consent: 'granted', credential: 'present', health: 'ok', ...overrides,
  }
}

export function sqliteUrl() {
  return `sqlite://${join(mkdtempSync(join(tmpdir(), 'startgate-node-')), 'startgate.db')}`
}

export function psql(sql, url = adminUrl) {
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], { stdio: ['ignore', 'ignore', 'inherit'] })
}

let started = false
/** A fresh PostgreSQL database (the server is started when it is not running). */
export function postgresUrl(tag) {
  if (!started) {
    execFileSync(join(repo, 'scripts', 'postgres-up'), { stdio: 'inherit' })
    started = true
  }
  const name = `startgate_test_node_${tag}_${process.pid}_${Math.random().toString(16).slice(2, 8)}`
  psql(`CREATE DATABASE ${name}`)
  return `${adminUrl.slice(0, adminUrl.lastIndexOf('/'))}/${name}`
}

export function dropDatabase(url) {
  psql(`DROP DATABASE IF EXISTS ${url.slice(url.lastIndexOf('/') + 1)} WITH (FORCE)`)
}

/** Each store a test runs on: a URL factory and its clean-up. */
export const stores = [
  ['sqlite', () => sqliteUrl(), () => {}],
  ['postgres', () => postgresUrl('t'), dropDatabase],
]

/** Where the build put its binaries (startgate-stress). */
export const buildDir = process.env.STARTGATE_BUILD_DIR ?? join(repo, 'target', 'debug')
