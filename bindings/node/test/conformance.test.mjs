import { test } from 'node:test'
import assert from 'node:assert/strict'

import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

import { Gate } from 'startgate'

import { runScenario, scenarioFiles } from './conformance.mjs'
import { dropDatabase, postgresUrl, psql, repo, sqliteUrl } from './helpers.mjs'

test('there are enough vectors', () => {
  assert.ok(scenarioFiles().length >= 25)
})

test('conformance vectors pass on SQLite', async (t) => {
  for (const file of scenarioFiles()) {
    await t.test(file.split('/').pop(), () => runScenario(file, sqliteUrl()))
  }
})

test('conformance vectors pass with facts from a host view', async (t) => {
  const url = postgresUrl('hostview')
  try {
    const gate = await Gate.open(url, { registry: join(repo, 'tests', 'conformance', 'registry.toml') })
    await gate.migrate()
    await gate.close()
    execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', url, '-f', join(repo, 'tests', 'conformance', 'host_view.sql')])
    for (const file of scenarioFiles()) {
      await t.test(file.split('/').pop(), async () => {
        try {
          await runScenario(file, url, { migrate: false, hostView: true })
        } finally {
          psql('TRUNCATE startgate.operation_runs, startgate.start_attempts, public.host_tenant_connections RESTART IDENTITY', url)
        }
      })
    }
  } finally {
    dropDatabase(url)
  }
})

test('conformance vectors pass on PostgreSQL', async (t) => {
  const url = postgresUrl('conformance')
  try {
    for (const file of scenarioFiles()) {
      await t.test(file.split('/').pop(), async () => {
        try {
          await runScenario(file, url)
        } finally {
          psql('TRUNCATE startgate.operation_runs, startgate.start_attempts, startgate.provider_connections RESTART IDENTITY', url)
        }
      })
    }
  } finally {
    dropDatabase(url)
  }
})
