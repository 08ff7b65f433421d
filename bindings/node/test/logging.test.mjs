// setLogger: the library's records reach the callback as each call settles,
// before its Promise resolves, with the tracing fields and never params;
// a logger that throws costs its record only; bad arguments are refused.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'

import { Gate, setLogger } from 'startgate'

import { alice, registry, ready, sqliteUrl, stores } from './helpers.mjs'

const SECRET = 'param-secret-node-9a3b'

for (const [store, fresh, cleanup] of stores) {
  test(`records reach the logger with their fields on ${store}`, async () => {
    const url = fresh()
    const records = []
    try {
      const gate = await Gate.open(url, { registry })
      await gate.migrate()
      await gate.upsertConnection(ready())
      setLogger((record) => records.push(record), 'info')
      const request = { operation: 'inventory.sync', tenantId: 'contoso', actor: alice, params: { note: SECRET } }
      const accepted = await gate.start(request)
      // Delivered before the Promise resolved.
      const starts = records.filter((r) => r.fields.call === 'start')
      assert.equal(starts.length, 1)
      const [record] = starts
      assert.equal(record.level, 'info')
      assert.equal(record.target, 'startgate')
      assert.equal(record.message, 'start inventory.sync: accepted')
      assert.deepEqual(
        [record.fields.operation, record.fields.tenantId, record.fields.outcome, record.fields.runId, record.fields.retries],
        ['inventory.sync', 'contoso', 'accepted', accepted.run.id, 0],
      )
      assert.ok(record.fields.roundTrips >= 1 && record.fields.durationUs >= 0)
      assert.equal(record.fields.reasonCode, undefined)

      const many = await Promise.all(Array.from({ length: 20 }, () => gate.start({ ...request, params: { note: `${SECRET}-2` } })))
      assert.ok(many.every((r) => r.outcome === 'deduped'))
      const deduped = records.filter((r) => r.fields.outcome === 'deduped')
      assert.equal(deduped.length, 20)
      assert.ok(deduped.every((r) => r.fields.paramsDiffer === true && r.fields.runId === accepted.run.id))

      await assert.rejects(gate.start({ ...request, tenantId: '' }), { code: 'invalid_request' })
      const [failed] = records.filter((r) => r.level === 'warn')
      assert.deepEqual([failed.fields.error, failed.fields.field], ['invalid_request', 'tenant_id'])
      assert.equal(records.filter((r) => r.fields.call === 'upsert_connection').length, 0, 'debug stays out at info')
      for (const r of records) assert.ok(!JSON.stringify(r).includes(SECRET), JSON.stringify(r))

      // A logger that throws loses its record; the call does not notice.
      let thrown = 0
      setLogger(() => { thrown++; throw new Error('disk full') }, 'debug')
      assert.equal((await gate.start(request)).outcome, 'deduped')
      assert.equal((await gate.listRuns()).length, 1)
      assert.ok(thrown >= 2)

      // null stops delivery.
      setLogger(null)
      const seen = thrown
      await gate.start(request)
      assert.equal(thrown, seen)
      await gate.close()
    } finally {
      setLogger(null)
      cleanup(url)
    }
  })
}

test('setLogger refuses what is not a logger or a level', () => {
  for (const level of ['INFO', 'warning', 'info\0', 3]) {
    assert.throws(() => setLogger(() => {}, level), {
      code: 'invalid_request', field: 'level', message: 'invalid request: level: must be one of error, warn, info, debug, trace',
    })
  }
  assert.throws(() => setLogger('console.log'), { code: 'invalid_request', field: 'callback' })
})

test('STARTGATE_LOG=info writes to stderr when no logger is set', () => {
  const script = `
    import { Gate } from 'startgate'
    const gate = await Gate.open(${JSON.stringify(sqliteUrl())}, { registry: ${JSON.stringify(registry)} })
    await gate.migrate()
    await gate.upsertConnection(${JSON.stringify(ready())})
    await gate.start({ operation: 'inventory.sync', tenantId: 'contoso', actor: ${JSON.stringify(alice)} })
    await gate.close()
  `
  const run = (env) => {
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ...env }, encoding: 'utf8',
    })
    assert.equal(child.status, 0, child.stderr)
    return child.stderr
  }
  const noisy = run({ STARTGATE_LOG: 'info' })
  const lines = noisy.split('\n').filter((l) => l.includes(' INFO startgate: start inventory.sync: accepted'))
  assert.equal(lines.length, 1, noisy)
  assert.match(lines[0], / tenant_id="contoso"/)
  assert.match(lines[0], / round_trips=\d+ /)
  assert.equal(run({ STARTGATE_LOG: '' }), '')
})
