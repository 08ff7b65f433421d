import { test } from 'node:test'
import assert from 'node:assert/strict'

import { runScenario, scenarioFiles } from './conformance.mjs'
import { dropDatabase, postgresUrl, psql, sqliteUrl } from './helpers.mjs'

test('there are enough vectors', () => {
  assert.ok(scenarioFiles().length >= 25)
})

test('conformance vectors pass on SQLite', async (t) => {
  for (const file of scenarioFiles()) {
    await t.test(file.split('/').pop(), () => runScenario(file, sqliteUrl()))
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
          psql('TRUNCATE operation_runs, start_attempts, provider_connections RESTART IDENTITY', url)
        }
      })
    }
  } finally {
    dropDatabase(url)
  }
})
