<?php

namespace Tests\Feature;

use Illuminate\Support\Facades\Artisan;
use Illuminate\Support\Facades\Facade;
use Startgate\Gate;
use Startgate\Laravel\Facades\Startgate;
use Tests\TestCase;

final class CommandsTest extends TestCase
{
    public function test_migrate_is_idempotent(): void
    {
        $this->assertSame(0, Artisan::call('startgate:migrate'));
        $this->assertStringContainsString('startgate: the schema "startgate" is up to date', Artisan::output());
        $this->assertSame(0, Artisan::call('startgate:migrate'));
    }

    public function test_runs_lists_and_filters(): void
    {
        $queued = $this->press('contoso');
        $this->press('fabrikam'); // blocked
        $this->assertSame(0, Artisan::call('startgate:runs'));
        $table = Artisan::output();
        $this->assertMatchesRegularExpression("/\\|\\s*{$queued['run_id']}\\s*\\|\\s*inventory\\.sync\\s*\\|\\s*contoso\\s*\\|\\s*graph\\s*\\|\\s*queued\\s*\\|/", $table);
        $this->assertMatchesRegularExpression('/\|\s*fabrikam\s*\|\s*graph-fab\s*\|\s*blocked\s*\|.*provider_consent_missing/', $table);

        $this->assertSame(0, Artisan::call('startgate:runs', ['--active' => true, '--json' => true]));
        $active = json_decode(Artisan::output(), true);
        $this->assertSame([$queued['run_id']], array_column($active, 'id'));

        $this->assertSame(0, Artisan::call('startgate:runs', ['--tenant' => 'nobody']));
        $this->assertSame("no runs match\n", Artisan::output());
    }

    public function test_numbers_on_the_command_line_are_read_strictly(): void
    {
        $this->assertSame(1, Artisan::call('startgate:runs', ['--limit' => '5x']));
        $this->assertStringContainsString('invalid request: limit: expected a whole number, found "5x"', Artisan::output());
        foreach (['1.5', '-1', 'abc', ''] as $id) {
            $this->assertSame(1, Artisan::call('startgate:explain', ['run' => $id]), $id);
            $this->assertStringContainsString('invalid request: run_id: expected a whole number', Artisan::output());
        }
        $this->assertSame(1, Artisan::call('startgate:explain', ['run' => '999']));
        $this->assertStringContainsString('run 999', Artisan::output());
    }

    public function test_explain_shows_the_run_what_the_operator_sees_and_the_attempts(): void
    {
        $blocked = $this->press('fabrikam');
        $id = basename($blocked['run_url']); // /admin/operations/{run_id}
        $this->assertSame(0, Artisan::call('startgate:explain', ['run' => $id]));
        $text = Artisan::output();
        foreach ([
            'inventory.sync',
            'fabrikam',
            'graph-fab',
            'blocked since',
            '[danger] Inventory sync blocked',
            'Admin consent has not been granted for this Microsoft Graph connection.',
            '→ Grant admin consent: /tenants/fabrikam/provider-connections/graph-fab/consent',
            'provider_consent_missing',
            'Start attempts (1)',
        ] as $needle) {
            $this->assertStringContainsString($needle, $text);
        }
        $this->assertSame(0, Artisan::call('startgate:explain', ['run' => $id, '--json' => true]));
        $json = json_decode(Artisan::output(), true);
        $this->assertSame(['run', 'presentation', 'attempts'], array_keys($json));
        $this->assertSame('blocked', $json['attempts'][0]['outcome']);
    }

    public function test_reap_ends_stale_runs(): void
    {
        // A manual clock, so the run goes stale without waiting out its dispatch timeout.
        config(['startgate.manual_clock' => '2026-01-01T09:00:00Z']);
        $this->app->forgetInstance(Gate::class);
        Facade::clearResolvedInstance(Gate::class);
        $run = $this->press('contoso')['run_id'];
        Startgate::advanceClock(31);
        $this->assertSame(0, Artisan::call('startgate:reap'));
        $this->assertStringContainsString("reaped 1 stale run(s)\n  run $run inventory.sync on (contoso, graph) → failed (run_lease_expired)", Artisan::output());
        $this->assertSame('failed', $this->runRecord($run)['status']);
        $this->assertSame(0, Artisan::call('startgate:reap'));
        $this->assertStringContainsString('reaped 0 stale run(s)', Artisan::output());
    }
}
