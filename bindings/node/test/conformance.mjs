// The Node runner of the conformance vectors (tests/conformance/README.md).
// Every call goes through Gate's own methods. Node exposes the contract's
// fields camelCased: arguments are camelCased on the way in and results
// snake_cased on the way back for matching; `params` and `summary` are the
// host's own documents and keep their keys.
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import assert from 'node:assert/strict'

import { Gate } from 'startgate'

import { repo } from './helpers.mjs'

const OPAQUE = new Set(['params', 'summary'])
const EXPECTATION_KEYS = new Set(['expect', 'expect_error', 'expect_message', 'expect_field', 'present', 'present_run', 'save'])

const toCamel = (key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase())
const toSnake = (key) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

export function renameKeys(value, rename) {
  if (Array.isArray(value)) return value.map((v) => renameKeys(v, rename))
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [
    rename(k),
    OPAQUE.has(k) || OPAQUE.has(toSnake(k)) ? v : renameKeys(v, rename),
  ]))
}

export const camel = (v) => renameKeys(v, toCamel)

// Tags (values a JSON file cannot hold) as JS values: `$text` with UTF-16
// units (a lone surrogate stays one), `$number` NaN or infinities, `$nest`
// nested arrays, `$repeat` a long string.
export function native(value) {
  if (Array.isArray(value)) return value.map(native)
  if (value === null || typeof value !== 'object') return value
  const keys = Object.keys(value)
  if (keys.length === 1) {
    const spec = value[keys[0]]
    switch (keys[0]) {
      case '$text': return spec.map((p) => (typeof p === 'string' ? p : String.fromCharCode(p))).join('')
      case '$number': return Number(spec)
      case '$nest': {
        let nested = []
        for (let i = 1; i < spec; i++) nested = [nested]
        return nested
      }
      case '$repeat': return spec[0].repeat(spec[1])
    }
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, native(v)]))
}

async function openGate(a) {
  const source = a.registry !== undefined
    ? { registry: join(repo, 'tests', 'conformance', a.registry) }
    : {}
  if (a.registryToml !== undefined) source.registryToml = a.registryToml
  const gate = await Gate.open(a.url, source)
  await gate.close()
  return null
}
export const snake = (v) => renameKeys(v, toSnake)

export function scenarioFiles() {
  const dir = join(repo, 'tests', 'conformance')
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f))
}

function invoke(gate, name, a) {
  switch (name) {
    case 'start': return gate.start(a.request)
    case 'check': return gate.check(a.requests)
    case 'start_sequence': return gate.startSequence(a.request)
    case 'mark_running': return gate.markRunning(a.runId, a.fencingToken)
    case 'heartbeat': return gate.heartbeat(a.runId, a.fencingToken)
    case 'complete': return gate.complete(a.completion)
    case 'cancel': return gate.cancel(a.runId, a.reasonCode)
    case 'reap_stale': return gate.reapStale()
    case 'get_run': return gate.getRun(a.runId)
    case 'list_runs': return gate.listRuns(a.filter)
    case 'attempts_for_run': return gate.attemptsForRun(a.runId)
    case 'upsert_connection': return gate.upsertConnection(a.connection)
    case 'get_connection': return gate.getConnection(a.tenantId, a.id)
    case 'list_connections': return gate.listConnections(a.tenantId)
    case 'advance_clock': return gate.advanceClock(a.seconds)
    case 'open': return openGate(a)
    default: throw new Error(`unknown call ${name}`)
  }
}

function substitute(value, saved) {
  if (typeof value === 'string' && value.startsWith('$') && !value.startsWith('${') && value.length > 1) {
    assert.ok(value.slice(1) in saved, `variable ${value} was never saved`)
    return saved[value.slice(1)]
  }
  if (typeof value === 'string' && value.includes('${')) {
    return value.replace(/\$\{(\w+)\}/g, (_, name) => String(saved[name]))
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, saved))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, saved)]))
  }
  return value
}

function lookup(value, path) {
  return path.split('.').reduce((v, key) => (v == null ? undefined : v[/^\d+$/.test(key) ? Number(key) : key]), value)
}

export function matches(expected, actual, path) {
  if (expected === '<any>') {
    assert.ok(actual !== null && actual !== undefined, `${path}: expected a value, found ${actual}`)
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected a list, found ${JSON.stringify(actual)}`)
    assert.equal(actual.length, expected.length, `${path}: expected ${expected.length} item(s), found ${JSON.stringify(actual)}`)
    expected.forEach((want, i) => matches(want, actual[i], `${path}[${i}]`))
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object' && !Array.isArray(actual), `${path}: expected an object, found ${JSON.stringify(actual)}`)
    for (const [key, want] of Object.entries(expected)) matches(want, actual[key] ?? null, `${path}.${key}`)
  } else {
    assert.equal(actual ?? null, expected, `${path}: expected ${JSON.stringify(expected)}, found ${JSON.stringify(actual)}`)
  }
}

// The host application writing its own table (tests/conformance/host_view.sql).
export function hostSaveConnection(url, connection) {
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-v', `doc=${JSON.stringify(connection)}`, url], {
    input: "SELECT public.host_save_connection(:'doc'::jsonb);\n",
    stdio: ['pipe', 'ignore', 'pipe'],
  })
}

// hostView: the connection facts are a host table's, read through a view;
// connections are written the host's way.
export async function runScenario(file, url, { migrate = true, hostView = false } = {}) {
  const scenario = JSON.parse(readFileSync(file, 'utf8'))
  const source = scenario.registry
    ? { registry: join(file, '..', scenario.registry) }
    : { registryToml: scenario.registry_toml }
  const gate = await Gate.open(url, { ...source, manualClock: scenario.clock ?? '2026-01-01T09:00:00Z' })
  if (migrate) await gate.migrate()
  for (const connection of scenario.connections ?? []) {
    if (hostView) hostSaveConnection(url, connection)
    else await gate.upsertConnection(camel(connection))
  }
  const saved = {}
  for (const [i, call] of scenario.calls.entries()) {
    const where = `${file.split('/').pop()} calls[${i}] (${call.call})`
    const args = native(camel(substitute(Object.fromEntries(Object.entries(call).filter(([k]) => !EXPECTATION_KEYS.has(k))), saved)))
    let name = call.call
    let callArgs = args
    if (hostView && name === 'upsert_connection') {
      if (call.expect_error) continue // the gate's own table's validation: not this setup's subject
      hostSaveConnection(url, snake(args.connection))
      name = 'get_connection'
      callArgs = { tenantId: args.connection.tenantId, id: args.connection.id }
    }
    let result
    try {
      result = await invoke(gate, name, callArgs)
    } catch (error) {
      assert.ok(error instanceof Error, `${where}: rejected with a non-Error ${error}`)
      assert.ok(call.expect_error, `${where}: unexpected ${error.code}: ${error.message}`)
      assert.equal(error.code, call.expect_error, `${where}: ${error.message}`)
      if (call.expect_message) assert.ok(error.message.includes(call.expect_message), `${where}: ${error.message} lacks ${call.expect_message}`)
      // Every surface names fields by their contract (snake_case) path.
      if (call.expect_field) {
        assert.ok(error.message.includes(`: ${call.expect_field}: `), `${where}: ${error.message} does not name ${call.expect_field}`)
        if (call.expect_error === 'invalid_request') assert.equal(error.field, call.expect_field, where)
      }
      continue
    }
    assert.ok(!call.expect_error, `${where}: expected error ${call.expect_error}, got success`)
    const doc = snake(result ?? null)
    for (const [name, path] of Object.entries(call.save ?? {})) {
      saved[name] = lookup(doc, path)
      assert.ok(saved[name] !== undefined && saved[name] !== null, `${where}: nothing at ${path}`)
    }
    if ('expect' in call) matches(substitute(call.expect, saved), doc, `${where}: result`)
    if (call.present) matches(substitute(call.present, saved), snake(gate.present(result)), `${where}: presentation`)
    if (call.present_run) {
      const run = call.call === 'complete' || call.call === 'cancel' ? result.run : result
      matches(substitute(call.present_run, saved), snake(gate.presentRun(run)), `${where}: presentation`)
    }
  }
  await gate.close()
}
