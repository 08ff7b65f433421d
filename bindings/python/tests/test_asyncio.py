"""AsyncGate: every operation as a coroutine, and 200+ concurrent starts on one gate."""

from __future__ import annotations

import asyncio
import threading

import startgate
from startgate import AsyncGate, Outcome

from conftest import ALICE, REGISTRY, ready


def test_async_operations(url: str) -> None:
    async def main() -> None:
        async with await AsyncGate.open(url, REGISTRY, manual_clock="2026-01-01T09:00:00Z") as gate:
            await gate.migrate()
            await gate.upsert_connection(ready())
            assert [c.id for c in await gate.list_connections("contoso")] == ["graph"]
            assert (await gate.get_connection("contoso", "graph")) is not None
            result = await gate.start(operation="inventory.sync", tenant_id="contoso", actor=ALICE)
            assert result.outcome is Outcome.ACCEPTED and result.run is not None
            run = result.run
            assert gate.present(result).title == "Inventory sync queued"
            assert isinstance((await gate.check([{"operation": "x", "tenant_id": "t", "actor": ALICE}]))[0], startgate.UnknownOperation)
            await gate.mark_running(run.id, 1)
            await gate.heartbeat(run.id, 1)
            assert (await gate.get_run(run.id)).status == "running"
            assert len(await gate.list_runs(tenant_id="contoso")) == 1
            assert len(await gate.attempts_for_run(run.id)) == 1
            assert gate.present_run(await gate.get_run(run.id)).title == "Inventory sync running"
            done = await gate.complete(run_id=run.id, fencing_token=1, outcome="succeeded")
            assert done.notify_initiator
            sequence = await gate.start_sequence(sequence="onboarding.bootstrap", tenant_id="contoso", actor=ALICE)
            assert sequence.run is not None
            await gate.cancel(sequence.run.id)
            await gate.advance_clock(3600)
            assert len((await gate.reap_stale()).reaped) == 1
            try:
                await gate.mark_running(run.id, 1)
            except startgate.InvalidTransition as error:
                assert error.code == "invalid_transition"
            else:
                raise AssertionError("a finished run cannot be marked running")

    asyncio.run(main())


def test_two_hundred_concurrent_starts_on_one_async_gate(url: str) -> None:
    async def main() -> None:
        gate = await AsyncGate.open(url, REGISTRY, max_connections=8)
        await gate.migrate()
        for t in range(10):
            await gate.upsert_connection(ready(f"tenant-{t}"))
        threads_before = threading.active_count()
        requests = [
            gate.start(operation=("inventory.sync", "compliance.snapshot")[(i // 10) % 2], tenant_id=f"tenant-{i % 10}", actor=ALICE)
            for i in range(240)
        ]
        results = await asyncio.gather(*requests)
        accepted = [r for r in results if r.outcome is Outcome.ACCEPTED]
        assert len(accepted) == 10, "nothing completes, so exactly one run per scope"
        assert {r.outcome for r in results} == {Outcome.ACCEPTED, Outcome.DEDUPED, Outcome.SCOPE_BUSY}
        holders = {r.tenant_id: r.run.id for r in accepted if r.run is not None}
        for r in results:
            if r.holder is not None:
                assert r.holder.id == holders[r.tenant_id], "every refusal names the one accepted run"
        # One runtime for sync and async: awaiting did not start a thread per call.
        assert threading.active_count() <= threads_before + 2
        await gate.close()

    asyncio.run(main())
