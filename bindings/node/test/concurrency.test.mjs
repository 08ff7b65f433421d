// 240 concurrent starts from one process, and gates in worker_threads.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'

import { Gate } from 'startgate'

import { alice, ready, registry, stores } from './helpers.mjs'

for (const [store, fresh, cleanup] of stores) {
  test(`240 concurrent starts with Promise.all on ${store}`, async () => {
    const url = fresh()
    try {
      const gate = await Gate.open(url, { registry, maxConnections: 8 })
      await gate.migrate()
      for (let t = 0; t < 10; t++) await gate.upsertConnection(ready(`tenant-${t}`))
      const results = await Promise.all(Array.from({ length: 240 }, (_, i) => gate.start({
        operation: ['inventory.sync', 'compliance.snapshot'][Math.floor(i / 10) % 2],
        tenantId: `tenant-${i % 10}`,
        actor: alice,
      })))
      const accepted = results.filter((r) => r.outcome === 'accepted')
      assert.equal(accepted.length, 10, 'nothing completes, so exactly one run per scope')
      assert.deepEqual(new Set(results.map((r) => r.outcome)), new Set(['accepted', 'deduped', 'scope_busy']))
      const holders = Object.fromEntries(accepted.map((r) => [r.tenantId, r.run.id]))
      for (const r of results) if (r.holder) assert.equal(r.holder.id, holders[r.tenantId])
      await gate.close()
    } finally {
      cleanup(url)
    }
  })
}

test('worker_threads each open a gate and race on one database', async () => {
  const [, fresh, cleanup] = stores[1]
  const url = fresh()
  try {
    const gate = await Gate.open(url, { registry })
    await gate.migrate()
    await gate.upsertConnection(ready())
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { Gate } = require('startgate')
      ;(async () => {
        const gate = await Gate.open(workerData.url, { registry: workerData.registry })
        const outcomes = []
        for (let i = 0; i < 25; i++) {
          const r = await gate.start({ operation: 'inventory.sync', tenantId: 'contoso', actor: workerData.actor })
          outcomes.push(r.outcome)
        }
        await gate.close()
        parentPort.postMessage(outcomes)
      })().catch((e) => parentPort.postMessage({ error: e.code + ': ' + e.message }))
    `
    const outcomes = (await Promise.all(Array.from({ length: 4 }, () => new Promise((resolve, reject) => {
      const worker = new Worker(source, { eval: true, workerData: { url, registry, actor: alice } })
      worker.once('message', resolve)
      worker.once('error', reject)
    })))).flat()
    assert.ok(outcomes.every((o) => typeof o === 'string'), JSON.stringify(outcomes))
    assert.equal(outcomes.filter((o) => o === 'accepted').length, 1)
    assert.equal(outcomes.length, 100)
    assert.equal((await gate.listRuns()).length, 1)
    await gate.close()
  } finally {
    cleanup(url)
  }
})
