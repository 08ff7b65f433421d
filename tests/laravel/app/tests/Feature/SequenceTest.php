<?php

namespace Tests\Feature;

use Illuminate\Support\Facades\DB;
use Startgate\Laravel\Facades\Startgate;
use Tests\TestCase;

/** Onboarding: each step's job completes its run, and the middleware dispatches the next. */
final class SequenceTest extends TestCase
{
    public function test_a_sequence_advances_through_the_middleware(): void
    {
        $started = $this->press('contoso', 'onboarding');
        $this->assertSame('accepted', $started['outcome']);
        $this->assertSame(1, DB::table('jobs')->count(), 'only the first step is dispatched');
        $this->assertSame('tenant.verify', $this->runRecord($started['run_id'])['operation']);

        $output = $this->work();
        foreach (['VerifyTenant', 'CheckProviderConnection', 'SyncInventory'] as $job) {
            $this->assertStringContainsString("Processed:  App\\Jobs\\$job", $output);
        }
        $runs = Startgate::listRuns(['tenant_id' => 'contoso']);
        usort($runs, fn ($a, $b) => $a['sequence_position'] <=> $b['sequence_position']);
        $this->assertSame(
            [['tenant.verify', 'succeeded'], ['provider.connection.check', 'succeeded'], ['inventory.sync', 'succeeded']],
            array_map(fn ($r) => [$r['operation'], $r['status']], $runs),
        );
        $this->assertSame(
            ['verify tenant', 'check connection', 'inventory page 1', 'inventory page 2'],
            DB::table('provider_calls')->orderBy('id')->pluck('what')->all(),
        );
        $this->assertSame([0, 0], [DB::table('jobs')->count(), DB::table('failed_jobs')->count()]);
    }
}
