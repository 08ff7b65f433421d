// Surface-overhead driver for Node: node bench.cjs URL REGISTRY N
// The package is loaded from STARTGATE_NODE_PACKAGE (default: bindings/node).
const path = require('node:path')
const { Gate } = require(process.env.STARTGATE_NODE_PACKAGE ?? path.join(__dirname, '..', '..', 'bindings', 'node'))

const [url, registry, count] = process.argv.slice(2)
const n = Number(count)
const actor = { id: 'bench', isMember: true, capabilities: ['inventory.sync', 'compliance.read'] }
const request = (scope) => ({ operation: 'inventory.sync', tenantId: 'bench', providerConnectionId: `c-${scope}`, actor })
const median = (v) => v.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[Math.floor(v.length / 2)]

;(async () => {
  const gate = await Gate.open(url, { registry })
  for (let i = 0; i < 50; i++) await gate.start(request(n + i))
  const result = await gate.start(request(n + 50))
  const present = []
  const start = []
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    gate.present(result)
    present.push(process.hrtime.bigint() - t)
  }
  for (let i = 0; i < n; i++) {
    const req = request(i)
    const t = process.hrtime.bigint()
    const r = await gate.start(req)
    start.push(process.hrtime.bigint() - t)
    if (r.outcome !== 'accepted') throw new Error(`not accepted: ${r.outcome}`)
  }
  console.log(JSON.stringify({ present_ns: Number(median(present)), start_ns: Number(median(start)) }))
  await gate.close()
})().catch((e) => { console.error(e); process.exit(1) })
