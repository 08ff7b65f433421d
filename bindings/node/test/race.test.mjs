// Four Node processes race on three hot PostgreSQL scopes; the history is
// checked by the same checker as the Rust stress tests.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'

import { Gate } from 'startgate'

import { buildDir, dropDatabase, postgresUrl, ready, registry } from './helpers.mjs'

test('4 Node processes on hot PostgreSQL scopes never double-admit', async () => {
  const url = postgresUrl('race')
  try {
    const gate = await Gate.open(url, { registry })
    await gate.migrate()
    for (let t = 0; t < 3; t++) await gate.upsertConnection(ready(`tenant-${t}`))
    await gate.close()
    const worker = join(import.meta.dirname, 'race_worker.mjs')
    const runs = await Promise.all([0, 1, 2, 3].map((w) =>
      promisify(execFile)(process.execPath, [worker, url, String(w), '3000'], { maxBuffer: 64 << 20 })))
    const events = runs.map((r) => r.stdout).join('')
    const admissions = (events.match(/"event":"accepted"/g) ?? []).length
    assert.ok(admissions >= 30, `only ${admissions} admissions: the race did not happen`)
    const check = spawnSync(join(buildDir, 'startgate-stress'), ['check', '--database', url], { input: events, encoding: 'utf8' })
    const verdict = JSON.parse(check.stdout)
    assert.deepEqual(verdict.violations, [])
    assert.equal(verdict.accepted_results, verdict.accepted_attempts)
    assert.equal(check.status, 0, check.stderr)
    console.log(`4 Node processes: ${verdict.admitted_runs} admitted runs, ${verdict.takeovers} takeovers, 0 violations`)
  } finally {
    dropDatabase(url)
  }
})
