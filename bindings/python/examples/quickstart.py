import startgate
from startgate import Actor, Gate

gate = Gate.open("sqlite:///tmp/startgate-quickstart.db", "examples/registry.toml")
gate.migrate()
gate.upsert_connection(startgate.ProviderConnection(
    id="graph-main", tenant_id="contoso", provider="microsoft_graph", is_default=True,
    consent=startgate.Consent.GRANTED, credential=startgate.Credential.PRESENT, health=startgate.Health.OK,
))

# A scheduled inventory sync, as automation would start it.
result = gate.start(
    operation="inventory.sync",
    tenant_id="contoso",
    actor=Actor("nightly-sync", is_member=True, capabilities=("inventory.sync",)),
    initiator=startgate.Initiator.SCHEDULE,
)
print(gate.present(result).title)  # "Inventory sync queued" (or "… already running")

if result.accepted and result.run is not None and result.run.fencing_token is not None:
    run, token = result.run, result.run.fencing_token
    try:
        gate.mark_running(run.id, token)
        gate.heartbeat(run.id, token)  # while the work goes on
        done = gate.complete(run_id=run.id, fencing_token=token, outcome="succeeded", summary={"devices": 1200})
        print(gate.present_run(done.run).title, "| notify:", done.notify_initiator)
    except startgate.InvalidTransition:
        pass  # the run was reaped or taken over: stop working on it
