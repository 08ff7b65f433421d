import { Gate } from 'startgate'

const gate = await Gate.open('sqlite:///tmp/startgate-node-quickstart.db', { registry: 'examples/registry.toml' })
await gate.migrate()
await gate.upsertConnection({
  tenantId: 'contoso', id: 'graph-main', provider: 'microsoft_graph',
  isDefault: true, consent: 'granted', credential: 'present', health: 'ok',
})

// A tool syncing many tenants' scopes at once: each scope admits one run.
const actor = { id: 'sync-tool', isMember: true, capabilities: ['inventory.sync', 'compliance.read'] }
const results = await Promise.all(['inventory.sync', 'compliance.snapshot'].map((operation) =>
  gate.start({ operation, tenantId: 'contoso', actor, initiator: 'system' })))

for (const result of results) {
  const shown = gate.present(result)
  console.log(`[${shown.statusLabel}] ${shown.title}`)
  if (result.outcome !== 'accepted') continue
  const { id, fencingToken } = result.run
  try {
    await gate.markRunning(id, fencingToken)
    const done = await gate.complete({ runId: id, fencingToken, outcome: 'succeeded' })
    console.log(gate.presentRun(done.run).title)
  } catch (error) {
    if (error.code !== 'invalid_transition') throw error // reaped or taken over: stop
  }
}
await gate.close()
