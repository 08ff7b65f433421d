// A small typed host; `tsc --noEmit --strict` must pass on it (test/types.test.mjs).
import { Gate, setLogger, type LogRecord, type StartRequest, type StartResult, type Presentation } from 'startgate'

async function startAll(gate: Gate, tenants: string[]): Promise<StartResult[]> {
  return Promise.all(tenants.map((tenantId) => {
    const request: StartRequest = {
      operation: 'inventory.sync',
      tenantId,
      actor: { id: 'alice', isMember: true, capabilities: ['inventory.sync'] },
      initiator: 'user',
    }
    return gate.start(request)
  }))
}

function notification(gate: Gate, result: StartResult): Presentation | null {
  return result.outcome === 'denied' ? null : gate.present(result)
}

export async function main(url: string, registry: string): Promise<number> {
  setLogger((record: LogRecord) => {
    if (record.level === 'warn' || record.level === 'error') console.error(record.message, record.fields)
  }, 'warn')
  const gate = await Gate.open(url, { registry, statementTimeoutMs: 2000 })
  await gate.migrate()
  let dispatched = 0
  for (const result of await startAll(gate, ['contoso', 'fabrikam'])) {
    const shown = notification(gate, result)
    if (shown) console.log(shown.tone, shown.title, shown.actions.map((a) => a.url))
    if (result.outcome === 'accepted' && result.run && result.run.fencingToken !== null && result.run.fencingToken !== undefined) {
      const done = await gate.complete({ runId: result.run.id, fencingToken: result.run.fencingToken, outcome: 'failed', reasonCode: 'provider_connection_unhealthy' })
      if (done.next) dispatched += 1
    }
  }
  await gate.close()
  return dispatched
}
