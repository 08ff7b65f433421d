<?php

namespace Tests;

use Illuminate\Foundation\Testing\TestCase as BaseTestCase;
use Illuminate\Support\Facades\DB;
use Startgate\Laravel\Facades\Startgate;

/**
 * Each test starts from empty queues and an empty gate (tables truncated in
 * the database tests/laravel/run prepared and migrated), with two tenants:
 * contoso, ready, and fabrikam, whose admin consent is missing.
 */
abstract class TestCase extends BaseTestCase
{
    use CreatesApplication;

    protected const ALICE = ['X-Operator' => 'alice'];

    protected function setUp(): void
    {
        parent::setUp();
        DB::unprepared('TRUNCATE jobs, failed_jobs, provider_calls RESTART IDENTITY;
            TRUNCATE startgate.operation_runs, startgate.start_attempts, startgate.provider_connections RESTART IDENTITY');
        $ready = ['provider' => 'microsoft_graph', 'is_default' => true, 'consent' => 'granted', 'credential' => 'present', 'health' => 'ok'];
        Startgate::upsertConnection(['tenant_id' => 'contoso', 'id' => 'graph'] + $ready);
        Startgate::upsertConnection(['tenant_id' => 'fabrikam', 'id' => 'graph-fab', 'consent' => 'missing'] + $ready);
    }

    /** Runs `php artisan queue:work --stop-when-empty` as a separate process; returns its output. */
    protected function work(): string
    {
        exec($this->workCommand() . ' 2>&1', $output, $status);
        $this->assertSame(0, $status, implode("\n", $output));
        return implode("\n", $output);
    }

    /** Starts a queue worker in the background; finish it with finishWork(). */
    protected function workInBackground()
    {
        $process = proc_open($this->workCommand(), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $this->assertIsResource($process);
        return [$process, $pipes];
    }

    protected function finishWork(array $worker): string
    {
        [$process, $pipes] = $worker;
        $output = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $this->assertSame(0, proc_close($process), $output);
        return $output;
    }

    /** Starts an operation through the JSON route, as the storm does. */
    protected function press(string $tenant, string $button = 'inventory-sync', array $body = [], array $headers = self::ALICE): array
    {
        $response = $this->postJson("/api/tenants/$tenant/$button", $body, $headers);
        $response->assertOk();
        return $response->json();
    }

    protected function runRecord(int $id): array
    {
        return Startgate::getRun($id);
    }

    private function workCommand(): string
    {
        return implode(' ', array_map('escapeshellarg', [PHP_BINARY, base_path('artisan'), 'queue:work', '--stop-when-empty', '--sleep=0']));
    }
}
