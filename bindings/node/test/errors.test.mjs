// Failures are Error instances with `code` = the stable code, the field named
// (camelCase) in the message and the driver's error as `cause`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'

import { Gate } from 'startgate'

import { alice, dropDatabase, postgresUrl, ready, registry, repo, sqliteUrl } from './helpers.mjs'

const base = { operation: 'inventory.sync', tenantId: 'contoso', actor: alice }

test('bad input rejects with invalid_request naming the field, and writes nothing', async () => {
  const gate = await Gate.open(sqliteUrl(), { registry })
  await gate.migrate()
  const cases = [
    [{ tenantId: 'contoso', actor: alice }, 'operation'],
    [{ ...base, tenantId: '' }, 'tenantId'],
    [{ ...base, actor: { id: 'a', isMember: 'yes' } }, 'actor.isMember'],
    [{ ...base, colour: 'blue' }, 'colour'],
    [{ ...base, tenantIdd: 'x' }, 'tenantIdd'],
    [{ ...base, params: [1, 2] }, 'params'],
    [{ ...base, subject: 'x'.repeat(10 * 1024 * 1024) }, 'subject'],
    [{ ...base, initiator: 'cron' }, 'initiator'],
  ]
  for (const [request, field] of cases) {
    await assert.rejects(gate.start(request), (error) => {
      assert.ok(error instanceof Error)
      assert.equal(error.code, 'invalid_request')
      assert.ok(error.message.includes(field), `${error.message} names ${field}`)
      return true
    })
  }
  await assert.rejects(gate.upsertConnection({ tenantId: 'c', id: 'x', provider: 'p', secret: 's' }), { code: 'invalid_request' })
  await assert.rejects(gate.start('not an object'), { code: 'invalid_request' })
  assert.throws(() => gate.advanceClock(1), { code: 'invalid_request' })
  assert.throws(() => gate.advanceClock(-1), { code: 'invalid_request' })
  assert.deepEqual(await gate.listRuns(), [])
})

test('each stable code arrives as Error.code', async () => {
  await assert.rejects(Gate.open(sqliteUrl(), { registry: '[operations.x]\nlabel = 1\n' }), { code: 'registry_invalid', message: /operations\.x\.label/ })
  await assert.rejects(Gate.open(sqliteUrl(), {}), { code: 'invalid_request', message: /registry/ })
  const gate = await Gate.open(sqliteUrl(), { registry })
  await gate.migrate()
  await assert.rejects(gate.start({ ...base, operation: 'inventory.synk' }), { code: 'unknown_operation', message: /inventory\.synk/ })
  await assert.rejects(gate.getRun(424242), { code: 'run_not_found' })
  await gate.upsertConnection(ready())
  const { run } = await gate.start(base)
  await assert.rejects(gate.markRunning(run.id, 99), { code: 'invalid_transition', message: /fencing token 99/ })
  assert.throws(() => gate.present({ outcome: 'maybe' }), { code: 'invalid_request' })
  await assert.rejects(
    Gate.open('postgres://postgres@127.0.0.1:1/none', { registry, connectTimeoutMs: 300, acquireTimeoutMs: 300 }),
    (error) => error.code === 'store_unavailable' && error.cause instanceof Error,
  )
  const url = postgresUrl('pooled')
  try {
    execFileSync(join(repo, 'scripts', 'pgbouncer-up'), { stdio: 'inherit' })
    const pooled = `postgres://postgres@127.0.0.1:6433/${url.slice(url.lastIndexOf('/') + 1)}?pool_mode=transaction`
    const behindPooler = await Gate.open(pooled, { registry })
    await assert.rejects(behindPooler.migrate(), { code: 'migration_failed', message: /directly/ })
  } finally {
    dropDatabase(url)
  }
})

test('a held lock rejects with store_timeout within the bound', async () => {
  const url = postgresUrl('timeout')
  try {
    const gate = await Gate.open(url, { registry, statementTimeoutMs: 500, acquireTimeoutMs: 500 })
    await gate.migrate()
    await gate.upsertConnection(ready())
    const locker = spawn('psql', ['-q', url, '-c', 'BEGIN; LOCK TABLE operation_runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;'], { stdio: 'ignore' })
    await new Promise((resolve) => setTimeout(resolve, 500))
    const began = Date.now()
    await assert.rejects(gate.start(base), { code: 'store_timeout' })
    assert.ok(Date.now() - began < 2500)
    await new Promise((resolve) => locker.on('exit', resolve))
    assert.equal((await gate.start(base)).outcome, 'accepted')
    await gate.close()
  } finally {
    dropDatabase(url)
  }
})
