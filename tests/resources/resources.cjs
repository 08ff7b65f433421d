// Resource bounds through the Node binding (same protocol as resources.c):
// node resources.cjs URL REGISTRY_FILE HANDLES CALLS
// The package is loaded from STARTGATE_NODE_PACKAGE (default: bindings/node).
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const { Gate } = require(process.env.STARTGATE_NODE_PACKAGE ?? path.join(__dirname, '..', '..', 'bindings', 'node'))

const request = { operation: 'inventory.sync', tenantId: 'contoso', actor: { id: 'ops', isMember: true, capabilities: ['inventory.sync'] } }
const connection = { tenantId: 'contoso', id: 'graph', provider: 'microsoft_graph', isDefault: true, consent: 'granted', credential: 'present', health: 'ok' }

async function cycleHandles (url, registry, n) {
  for (let i = 0; i < n; i++) {
    const gate = await Gate.open(url, { registry, maxConnections: 2 })
    await gate.listConnections('contoso')
    await gate.close()
  }
}

async function calls (gate, result, n) {
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) await gate.check([request])
    else gate.present(result)
  }
}

const rssKb = () => Math.round(process.memoryUsage().rss / 1024)

;(async () => {
  const [url, registryFile, h, c] = process.argv.slice(2)
  const registry = registryFile
  const handles = Number(h)
  const n = Number(c)
  const gate = await Gate.open(url, { registry, maxConnections: 2 })
  await gate.migrate()
  await gate.upsertConnection(connection)
  const result = await gate.start(request)
  await cycleHandles(url, registry, Math.max(Math.floor(handles / 10), 1000))
  await calls(gate, result, Math.floor(n / 10) + 1)
  global.gc?.()
  const before = rssKb()
  await cycleHandles(url, registry, handles)
  global.gc?.()
  const afterHandles = rssKb()
  await calls(gate, result, n)
  global.gc?.()
  const after = rssKb()
  console.log(JSON.stringify({ surface: 'node', handles, calls: n, rss_before_kb: before, rss_after_handles_kb: afterHandles, rss_after_kb: after }))
  const rl = readline.createInterface({ input: process.stdin })
  rl.once('line', async () => {
    rl.close()
    await gate.close()
    // stdin would keep the event loop alive.
    process.exit(0)
  })
})().catch((error) => {
  console.error(error)
  process.exit(1)
})
