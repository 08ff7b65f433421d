// One racing Node process: random starts on hot scopes, runs driven to an end
// or abandoned (they go stale and are taken over), occasional reaps. Prints one
// JSON line per accepted result, in the event format of `startgate-stress check`.
// Usage: node race_worker.mjs URL WORKER ITERATIONS. It makes at least ITERATIONS
// calls and goes on for at least RACE_MS, so that abandoned runs go stale and are
// taken over however fast the calls are.
import { join } from 'node:path'

import { Gate } from 'startgate'

import { repo } from './helpers.mjs'

const [url, worker, iterations] = process.argv.slice(2)
// mulberry32: a small 32-bit PRNG (integer math only), reproducible per worker.
let seed = 1000 + Number(worker)
const random = (n) => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) % n
}
const gate = await Gate.open(url, { registry: join(repo, 'tests', 'race_registry.toml'), statementTimeoutMs: 20000, acquireTimeoutMs: 20000 })
const actor = { id: `node-${worker}`, isMember: true, capabilities: ['sync'] }
const owned = new Map()
const RACE_MS = 2000
const until = Date.now() + RACE_MS
let calls = 0
for (; calls < Number(iterations) || Date.now() < until; calls++) {
  const roll = random(100)
  let current = null
  try {
    if (owned.size === 0 || roll < 40) {
      const operation = random(2) ? 'inventory.sync' : 'compliance.snapshot'
      const result = await gate.start({ operation, tenantId: `tenant-${random(3)}`, actor })
      if (result.outcome === 'accepted') {
        const run = result.run
        console.log(JSON.stringify({ event: 'accepted', run_id: run.id, fencing_token: run.fencingToken, tenant_id: run.tenantId, replaced_run_id: result.replacedRunId }))
        owned.set(run.id, { token: run.fencingToken, running: false })
      }
    } else if (roll < 92) {
      const ids = [...owned.keys()]
      current = ids[random(ids.length)]
      const run = owned.get(current)
      if (!run.running) {
        await gate.markRunning(current, run.token)
        run.running = true
      } else {
        owned.delete(current)
        await gate.complete({ runId: current, fencingToken: run.token, outcome: 'succeeded' })
      }
    } else if (roll < 97) {
      const ids = [...owned.keys()]
      owned.delete(ids[random(ids.length)])
    } else {
      await gate.reapStale()
    }
  } catch (error) {
    if (error.code !== 'invalid_transition') throw error
    owned.delete(current) // taken over or reaped: stop working on it
  }
}
console.log(JSON.stringify({ event: 'summary', calls, counts: {} }))
await gate.close()
