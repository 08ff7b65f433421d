import asyncio

import startgate
from startgate import AsyncGate


async def main() -> None:
    async with await AsyncGate.open("sqlite:///tmp/startgate-quickstart.db", "examples/registry.toml") as gate:
        await gate.migrate()
        actor = {"id": "ops-bot", "is_member": True, "capabilities": ["inventory.sync", "compliance.read"]}
        # Start the nightly work for many tenants at once; each scope admits one run.
        results = await asyncio.gather(*(
            gate.start(operation=op, tenant_id="contoso", actor=actor, initiator="system")
            for op in ("inventory.sync", "compliance.snapshot")
        ))
        for result in results:
            shown = gate.present(result)  # no database: a plain call
            print(f"[{shown.status_label}] {shown.title}")
        blocked = [r for r in results if r.outcome is startgate.Outcome.BLOCKED]
        for result in blocked:
            print("why:", result.reasons[0].message)


asyncio.run(main())
