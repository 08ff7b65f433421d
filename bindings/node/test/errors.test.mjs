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
  // Fields are named by their contract (snake_case) path on every surface.
  const cases = [
    [{ tenantId: 'contoso', actor: alice }, 'operation'],
    [{ ...base, tenantId: '' }, 'tenant_id'],
    [{ ...base, actor: { id: 'a', isMember: 'yes' } }, 'actor.is_member'],
    [{ ...base, colour: 'blue' }, 'colour'],
    [{ ...base, tenantIdd: 'x' }, 'tenant_idd'],
    [{ ...base, params: [1, 2] }, 'params'],
    [{ ...base, subject: 'x'.repeat(10 * 1024 * 1024) }, 'request'],
    [{ ...base, initiator: 'cron' }, 'initiator'],
    [{ ...base, tenantId: '\ud800' }, 'tenant_id'],
    [{ ...base, params: { at: new Date() } }, 'params.at'],
    [{ ...base, params: { run: () => 1 } }, 'params.run'],
    [{ ...base, params: { n: NaN } }, 'params.n'],
    [{ ...base, params: { big: 2n ** 64n } }, 'params.big'],
  ]
  for (const [request, field] of cases) {
    await assert.rejects(gate.start(request), (error) => {
      assert.ok(error instanceof Error)
      assert.equal(error.code, 'invalid_request')
      assert.equal(error.field, field, error.message)
      assert.ok(error.message.includes(`: ${field}: `), `${error.message} names ${field}`)
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
  await assert.rejects(Gate.open(sqliteUrl(), { registryToml: '[operations.x]\nlabel = 1\n' }), { code: 'registry_invalid', message: /operations\.x\.label/ })
  await assert.rejects(Gate.open(sqliteUrl(), { registry: '[operations.x]\nlabel = 1\n' }), { code: 'registry_invalid', message: /it does not exist \(to pass TOML text, give it as registry_toml\)/ })
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
    const locker = spawn('psql', ['-q', url, '-c', 'BEGIN; LOCK TABLE startgate.operation_runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;'], { stdio: 'ignore' })
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

test('a wrong argument rejects the Promise, never throws, and ids are exact', async () => {
  const gate = await Gate.open(sqliteUrl(), { registry })
  await gate.migrate()
  await gate.upsertConnection(ready())
  await gate.upsertConnection(ready('\udbff\udfff'))
  const started = await gate.start(base)
  const { id, fencingToken } = started.run
  for (const [runId, token, field] of [
    ['1', 1, 'run_id'], [1.9, 1, 'run_id'], [NaN, 1, 'run_id'], [Infinity, 1, 'run_id'],
    [2 ** 63, 1, 'run_id'], [2n ** 63n, 1, 'run_id'], [id, 1.5, 'fencing_token'], [undefined, 1, 'run_id'],
  ]) {
    let promise
    assert.doesNotThrow(() => { promise = gate.markRunning(runId, token) })
    assert.ok(promise instanceof Promise)
    await assert.rejects(promise, (error) => error.code === 'invalid_request' && error.field === field)
  }
  // Nothing was coerced into run `id`: it is still queued.
  assert.equal((await gate.getRun(id)).status, 'queued')
  // Exact integers work as numbers and as BigInts.
  assert.equal((await gate.markRunning(BigInt(id), BigInt(fencingToken))).status, 'running')
  // Lone surrogates never alias two tenants onto one.
  for (const tenant of ['\ud800', '\udfff']) {
    await assert.rejects(gate.getConnection(tenant, 'graph'), { code: 'invalid_request', field: 'tenant_id' })
  }
  assert.equal((await gate.getConnection('\udbff\udfff', 'graph')).tenantId, '\udbff\udfff')
  await gate.close()
})

test('text is read exactly at every length: around the short-string buffer, whole or refused', async () => {
  const gate = await Gate.open(sqliteUrl(), { registry })
  await gate.migrate()
  // The addon reads a string of up to 127 UTF-16 units in one go and a longer
  // one by its length: both ways must keep every unit and refuse a lone surrogate.
  for (const length of [1, 126, 127, 128, 129, 250]) {
    const plain = 'a'.repeat(length)
    assert.equal((await gate.upsertConnection(ready(plain))).tenantId, plain)
    // A surrogate pair across the 127th unit, and at the very end.
    for (const at of [Math.max(0, length - 2), Math.min(125, Math.max(0, length - 2))]) {
      const pair = plain.slice(0, at) + '\ud83d\ude00' + plain.slice(at + 2)
      assert.equal((await gate.upsertConnection(ready(pair))).tenantId, pair)
      const lone = plain.slice(0, at) + '\ud83d' + plain.slice(at + 1)
      await assert.rejects(gate.upsertConnection(ready(lone)), { code: 'invalid_request', field: 'tenant_id' })
    }
  }
  await gate.close()
})

test('plain data and the value-by-value walk read an argument alike', async () => {
  const gate = await Gate.open(sqliteUrl(), { registry })
  await gate.migrate()
  // Plain JSON data is written to JSON text by one JavaScript function; an
  // argument holding anything else (here a BigInt, added as `forced`) is read
  // value by value instead. Both must give the core the same document.
  const params = () => ({
    text: 'qu"ote \\ back é 😀 \u2028 \u001f end',
    fraction: 0.1, tiny: 5e-324, small: 1e-7, large: 1.5e300, edge: 2 ** 53, negative: -(2 ** 53), zero: -0,
    camelKey: { innerKey: [1, [2, [3]], null, true, false, , undefined] }, // eslint-disable-line no-sparse-arrays
    skipped: undefined, empty: {}, none: [], '': 'empty key', 'key"with\\escapes': 1, 7: 'integer key',
    bare: Object.assign(Object.create(null), { a: 1 }),
    proxied: new Proxy([1, { b: 2 }], {}),
  })
  const expected = {
    text: 'qu"ote \\ back é 😀 \u2028 \u001f end',
    // 2^53 is read as an integer, and comes back beyond 2^53 - 1: a BigInt.
    fraction: 0.1, tiny: 5e-324, small: 1e-7, large: 1.5e300, edge: 2n ** 53n, negative: -(2n ** 53n), zero: 0,
    camelKey: { innerKey: [1, [2, [3]], null, true, false, null, null] },
    empty: {}, none: [], '': 'empty key', 'key"with\\escapes': 1, 7: 'integer key',
    bare: { a: 1 }, proxied: [1, { b: 2 }],
  }
  const started = []
  for (const [tenant, extra] of [['plain', {}], ['walked', { forced: 1n }]]) {
    await gate.upsertConnection(ready(tenant))
    const result = await gate.start({ operation: 'inventory.sync', tenantId: tenant, actor: alice, params: { ...params(), ...extra } })
    assert.equal(result.outcome, 'accepted')
    started.push(result.run.params)
  }
  const { forced, ...walked } = started[1]
  assert.equal(forced, 1)
  assert.deepEqual(started[0], expected)
  assert.deepEqual(walked, expected)
  assert.ok(Object.is(started[0].zero, 0) && Object.is(walked.zero, 0))

  // A key renamed onto another: the later one wins either way; the contract's
  // keys are renamed, the host's (inside params) never are.
  for (const extra of [{}, { params: { forced: 1n } }]) {
    const answer = await gate.start({ operation: 'inventory.sync', tenant_id: 'nobody', tenantId: 'plain', actor: alice, ...extra })
    assert.equal(answer.outcome, 'deduped')
    await assert.rejects(
      gate.start({ operation: 'inventory.sync', tenantId: 'plain', actor: { ...alice, isMemberr: true }, ...extra }),
      { code: 'invalid_request', field: 'actor.is_memberr' })
  }

  // Nesting around the limit gets the same answer both ways.
  const nested = (depth) => { let v = 1; for (let i = 0; i < depth; i++) v = { v }; return v }
  for (const depth of [120, 125, 126, 127, 128, 129]) {
    const answers = []
    for (const extra of [{}, { forced: 1n }]) {
      const request = { operation: 'inventory.sync', tenantId: 'plain', actor: alice, params: { deep: nested(depth), ...extra } }
      answers.push(await gate.start(request).then(
        (answer) => answer.outcome,
        (error) => ({ code: error.code, field: error.field, message: error.message })))
    }
    assert.deepEqual(answers[0], answers[1], `depth ${depth}`)
  }

  // A getter runs once on plain data; the walk reads the argument again.
  for (const [extra, reads] of [[{}, 1], [{ params: { forced: 1n } }, 2]]) {
    let count = 0
    const request = { operation: 'inventory.sync', actor: alice, get tenantId() { count += 1; return 'plain' }, ...extra }
    assert.equal((await gate.start(request)).outcome, 'deduped')
    assert.equal(count, reads)
  }

  // A class instance is not plain data: the walk reads its own fields.
  class Actor { constructor() { Object.assign(this, alice) } }
  assert.equal((await gate.start({ operation: 'inventory.sync', tenantId: 'plain', actor: new Actor() })).outcome, 'deduped')

  // The encoder's text is read in one go up to 1019 bytes and by its length
  // beyond: a character of 2, 3 or 4 bytes across that edge is kept whole.
  const snakeActor = { id: alice.id, is_member: alice.isMember, capabilities: alice.capabilities }
  let tenant = 0
  for (const wide of ['é', '€', '😀']) {
    const bytes = Buffer.byteLength(wide)
    for (let end = 1014; end <= 1030; end++) {
      const tenantId = `edge-${String(tenant++).padStart(3, '0')}`
      const frame = JSON.stringify({ operation: 'inventory.sync', tenant_id: tenantId, actor: snakeActor, params: { note: '' } })
      // The wide character ends at byte `end` of the encoder's text.
      const note = 'n'.repeat(end - bytes - (frame.length - 3)) + wide + 'z'
      await gate.upsertConnection(ready(tenantId))
      const result = await gate.start({ operation: 'inventory.sync', tenantId, actor: alice, params: { note } })
      assert.equal(result.run.params.note, note)
    }
  }
  await gate.close()
})
