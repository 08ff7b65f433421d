<?php

namespace Tests\Feature;

use App\Jobs\SyncInventory;
use Illuminate\Support\Facades\Bus;
use Illuminate\Support\Facades\DB;
use Startgate\Exception;
use Startgate\Laravel\Facades\Startgate;
use Startgate\Laravel\UngatedJob;
use Tests\TestCase;

/** A gated job's life through RunThroughGate, run by real `queue:work` processes. */
final class GatedJobTest extends TestCase
{
    public function test_the_full_life_of_a_gated_job(): void
    {
        $started = $this->press('contoso', 'inventory-sync', ['params' => ['pages' => 2]]);
        $this->assertSame(1, DB::table('jobs')->count(), 'one job dispatched for the accepted run');
        $this->assertSame('queued', $this->runRecord($started['run_id'])['status']);

        $output = $this->work();
        $this->assertStringContainsString('Processed:  App\Jobs\SyncInventory', $output);

        $run = $this->runRecord($started['run_id']);
        $this->assertSame(['succeeded', ['items' => 80]], [$run['status'], $run['summary']]);
        $this->assertNotNull($run['started_at'], 'marked running before handle()');
        $calls = DB::table('provider_calls')->orderBy('id')->get();
        $this->assertSame(['inventory page 1', 'inventory page 2'], $calls->pluck('what')->all());
        foreach ($calls as $call) {
            $this->assertSame([$started['run_id'], $started['fencing_token'], 'graph'], [(int) $call->run_id, (int) $call->fencing_token, $call->provider_connection_id]);
        }
        $this->assertSame([0, 0], [DB::table('jobs')->count(), DB::table('failed_jobs')->count()]);
    }

    public function test_heartbeats_keep_a_long_job_its_run(): void
    {
        // Four one-second pages against a three-second lease: without the
        // heartbeat after each page, the start below would take the run over.
        $started = $this->press('contoso', 'inventory-sync', ['params' => ['pages' => 4, 'page_ms' => 1000]]);
        $worker = $this->workInBackground();
        $this->waitUntilRunning($started['run_id']);
        usleep(3_500_000);
        $again = $this->press('contoso');
        $this->assertSame('deduped', $again['outcome'], 'the run is still held after its first lease');
        $this->finishWork($worker);
        $this->assertSame('succeeded', $this->runRecord($started['run_id'])['status']);
        $this->assertSame(4, DB::table('provider_calls')->count());
    }

    public function test_a_failing_job_fails_its_run_with_the_reason_and_is_not_retried(): void
    {
        $started = $this->press('contoso', 'inventory-sync', ['params' => ['fail' => true]]);
        $this->work();
        $run = $this->runRecord($started['run_id']);
        $this->assertSame(['failed', 'provider_throttled'], [$run['status'], $run['reason_code']]);
        $this->assertSame(1, DB::table('provider_calls')->count(), 'one attempt, no retry');
        $this->assertSame([0, 1], [DB::table('jobs')->count(), DB::table('failed_jobs')->count()]);
        $this->assertStringContainsString('ProviderThrottled', DB::table('failed_jobs')->value('exception'));
    }

    public function test_a_job_whose_run_was_cancelled_stops_without_working(): void
    {
        $started = $this->press('contoso');
        Startgate::cancel($started['run_id']);
        $this->work();
        $this->assertSame('cancelled', $this->runRecord($started['run_id'])['status']);
        $this->assertSame(0, DB::table('provider_calls')->count());
        $this->assertSame([0, 0], [DB::table('jobs')->count(), DB::table('failed_jobs')->count()], 'deleted, not failed or retried');
        $this->assertStringContainsString("the job for run {$started['run_id']} stops without working", $this->log());
    }

    public function test_a_job_whose_run_was_taken_over_stops_at_its_next_heartbeat(): void
    {
        // Pages longer than the lease: the run goes stale during the first page.
        $first = $this->press('contoso', 'inventory-sync', ['params' => ['pages' => 3, 'page_ms' => 5000]]);
        $worker = $this->workInBackground();
        $this->waitUntilRunning($first['run_id']);
        usleep(3_500_000); // past the lease, before the heartbeat at the end of the page
        $second = $this->press('contoso', 'inventory-sync', ['params' => ['pages' => 1]]);
        $this->assertSame(['accepted', $first['run_id']], [$second['outcome'], $second['replaced_run_id']]);
        $this->finishWork($worker);
        $this->assertSame('failed', $this->runRecord($first['run_id'])['status']);
        $this->assertSame('succeeded', $this->runRecord($second['run_id'])['status']);
        $calls = DB::table('provider_calls')->where('run_id', $first['run_id'])->count();
        $this->assertSame(1, $calls, 'the first job stopped at the heartbeat after its first page');
        $this->assertSame(0, DB::table('failed_jobs')->count());
    }

    public function test_a_gated_job_dispatched_without_a_run_is_refused(): void
    {
        SyncInventory::dispatch();
        $this->work();
        $this->assertSame(0, DB::table('provider_calls')->count());
        $this->assertSame([0, 1], [DB::table('jobs')->count(), DB::table('failed_jobs')->count()]);
        $this->assertStringContainsString('was dispatched without a run the gate admitted', DB::table('failed_jobs')->value('exception'));
    }

    public function test_no_path_around_the_gate_reaches_the_provider(): void
    {
        try {
            SyncInventory::dispatchSync();
            $this->fail('dispatchSync ran a job without a run');
        } catch (UngatedJob $e) {
            $this->assertStringContainsString('dispatched without a run', $e->getMessage());
        }
        // Bus::dispatchNow() skips job middleware: handle() itself refuses.
        $accepted = $this->startResult('contoso'); // admitted, its job not dispatched
        try {
            Bus::dispatchNow(new SyncInventory($accepted));
            $this->fail('dispatchNow ran a job around the middleware');
        } catch (UngatedJob $e) {
            $this->assertStringContainsString('without RunThroughGate', $e->getMessage());
        }
        // A forged run: the gate knows no such run.
        SyncInventory::dispatch(['id' => 999_999, 'fencing_token' => 1]);
        // The run, but not the token it was admitted with.
        SyncInventory::dispatch(['fencing_token' => $accepted['run']['fencing_token'] + 1] + $accepted['run']);
        $this->work();
        $this->assertSame(0, DB::table('provider_calls')->count());
        $this->assertSame('queued', $this->runRecord($accepted['run']['id'])['status']);
        $this->assertSame([0, 0], [DB::table('jobs')->count(), DB::table('failed_jobs')->count()], 'both stopped, neither retried');
        // Only an accepted result dispatches.
        try {
            SyncInventory::dispatch($this->startResult('contoso'));
            $this->fail('a deduped result was dispatched');
        } catch (Exception $e) {
            $this->assertSame(['invalid_request', 'result'], [$e->getErrorCode(), $e->getField()]);
        }
    }

    private function startResult(string $tenant): array
    {
        return Startgate::start(['operation' => 'inventory.sync', 'tenant_id' => $tenant, 'actor' => ['id' => 'alice', 'is_member' => true, 'capabilities' => ['inventory.sync']]]);
    }

    private function waitUntilRunning(int $runId): void
    {
        for ($i = 0; $i < 200 && $this->runRecord($runId)['status'] !== 'running'; $i++) {
            usleep(50_000);
        }
        $this->assertSame('running', $this->runRecord($runId)['status']);
    }

    private function log(): string
    {
        return (string) @file_get_contents(storage_path('logs/laravel.log'));
    }
}
