// Every operation of Gate, on SQLite and PostgreSQL.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { Gate, version } from 'startgate'

import { alice, registry, ready, repo, sqliteUrl, stores } from './helpers.mjs'

for (const [store, fresh, cleanup] of stores) {
  test(`every operation on ${store}`, async () => {
    const url = fresh()
    try {
      const gate = await Gate.open(url, { registry, manualClock: '2026-01-01T09:00:00Z' })
      await gate.migrate()
      await gate.migrate() // idempotent
      const cargo = readFileSync(join(repo, 'Cargo.toml'), 'utf8')
      assert.equal(version(), cargo.match(/^version = "([^"]+)"/m)[1])

      const stored = await gate.upsertConnection(ready())
      assert.equal(stored.isDefault, true)
      assert.equal((await gate.getConnection('contoso', 'graph')).id, 'graph')
      assert.equal(await gate.getConnection('contoso', 'nope'), null)
      assert.deepEqual((await gate.listConnections('contoso')).map((c) => c.id), ['graph'])

      const accepted = await gate.start({ operation: 'inventory.sync', tenantId: 'contoso', actor: alice, params: { snake_case_key: 1 } })
      assert.equal(accepted.outcome, 'accepted')
      assert.equal(accepted.providerConnectionId, 'graph')
      assert.deepEqual(accepted.run.params, { snake_case_key: 1 }, 'host params keep their keys')
      const run = accepted.run
      assert.equal(run.fencingToken, 1)
      assert.equal(run.createdAt, '2026-01-01T09:00:00Z')
      const shown = gate.present(accepted)
      assert.deepEqual([shown.statusLabel, shown.tone, shown.title], ['queued', 'success', 'Inventory sync queued'])

      const deduped = await gate.start({ operation: 'inventory.sync', tenantId: 'contoso', actor: alice })
      assert.equal(deduped.outcome, 'deduped')
      assert.equal(deduped.paramsDiffer, true)
      assert.equal(deduped.run.fencingToken, null, 'a deduped caller does not get the token')

      const answers = await gate.check([
        { operation: 'restore.execute', subject: '17', tenantId: 'contoso', actor: alice },
        { operation: 'inventory.sync', tenantId: 'fabrikam', actor: alice },
        { operation: 'nope', tenantId: 'contoso', actor: alice },
      ])
      assert.equal(answers[0].outcome, 'scope_busy')
      assert.equal(answers[1].reasons[0].code, 'provider_connection_missing')
      assert.equal(answers[2].error.code, 'unknown_operation')

      // The process's own view of what this gate did (no database); the keys
      // of its maps are data and keep their spelling.
      const metrics = gate.metrics()
      assert.deepEqual(metrics.starts, { 'inventory.sync': { accepted: 1, deduped: 1 } })
      assert.deepEqual([metrics.latency.start.calls, metrics.latency.check.calls], [2, 1])
      assert.equal(metrics.reapedRuns, 0)
      assert.ok(metrics.latency.start.p50Us > 0)

      await assert.rejects(gate.heartbeat(run.id, 1), { code: 'invalid_transition' })
      assert.equal((await gate.markRunning(run.id, 1)).status, 'running')
      gate.advanceClock(30)
      assert.equal((await gate.heartbeat(run.id, 1)).staleAt, '2026-01-01T09:05:30Z')
      assert.equal((await gate.getRun(run.id)).status, 'running')
      assert.equal(gate.presentRun(await gate.getRun(run.id)).title, 'Inventory sync running')
      assert.deepEqual((await gate.listRuns({ active: true })).map((r) => r.id), [run.id])
      assert.deepEqual((await gate.listRuns()).length, 1)
      assert.deepEqual((await gate.attemptsForRun(run.id)).map((a) => a.outcome), ['accepted', 'deduped'])

      const done = await gate.complete({ runId: run.id, fencingToken: 1, outcome: 'succeeded', summary: { items_seen: 3 } })
      assert.equal(done.notifyInitiator, true)
      assert.equal(done.next, null)
      assert.deepEqual(done.run.summary, { items_seen: 3 })

      const sequence = await gate.startSequence({ sequence: 'onboarding.bootstrap', tenantId: 'contoso', actor: alice })
      assert.equal(sequence.pending.length, 2)
      const cancelled = await gate.cancel(sequence.run.id, 'operator_stop')
      assert.equal(cancelled.run.reasonCode, 'operator_stop')
      assert.equal(cancelled.next.run.operation, 'provider.connection.check')
      gate.advanceClock(3600)
      const reaped = await gate.reapStale()
      assert.deepEqual(reaped.reaped.map((r) => r.id), [cancelled.next.run.id])
      assert.equal(reaped.next[0].run.operation, 'inventory.sync')

      await gate.close()
      await assert.rejects(gate.getRun(run.id), { code: 'store_unavailable' })
    } finally {
      cleanup(url)
    }
  })
}

test('integers in results come back exactly: numbers up to 2^53 - 1, BigInts beyond', async () => {
  const gate = await Gate.open(sqliteUrl(), { registry })
  await gate.migrate()
  await gate.upsertConnection(ready())
  const params = { wide: 2n ** 60n, widest: -(2n ** 63n), edge: 2 ** 53 - 1, fraction: 0.5, nested: [{ id: 2n ** 54n + 1n }] }
  const accepted = await gate.start({ operation: 'inventory.sync', tenantId: 'contoso', actor: alice, params })
  assert.equal(accepted.outcome, 'accepted')
  assert.deepEqual(accepted.run.params, { ...params, nested: [{ id: 2n ** 54n + 1n }] })
  assert.equal(typeof accepted.run.params.edge, 'number')
  assert.equal(typeof accepted.run.id, 'number')
  await gate.close()
})
