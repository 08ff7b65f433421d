<?php

namespace Tests\Feature;

use Illuminate\Log\Events\MessageLogged;
use Illuminate\Support\Facades\Event;
use Illuminate\Support\Facades\Facade;
use Startgate\Gate;
use Startgate\Laravel\Facades\Startgate;
use Tests\TestCase;

/**
 * The gate's records reach the app's log channel: in the request that
 * started a run (through Laravel's own Log manager, so MessageLogged fires),
 * and in the queue worker's process that ran it (its laravel.log lines).
 */
final class LoggingTest extends TestCase
{
    public function test_a_start_is_logged_in_the_apps_channel_with_its_fields(): void
    {
        $logged = [];
        Event::listen(MessageLogged::class, function (MessageLogged $event) use (&$logged): void {
            $logged[] = $event;
        });
        $result = $this->press('contoso', 'inventory-sync', ['params' => ['note' => 'param-secret-laravel-0b7e']]);
        $runId = $result['run_id'];
        $starts = array_values(array_filter($logged, fn ($e) => $e->message === 'start inventory.sync: accepted'));
        $this->assertCount(1, $starts, json_encode(array_map(fn ($e) => $e->message, $logged)));
        $this->assertSame('info', $starts[0]->level);
        $context = $starts[0]->context;
        $this->assertSame(['start', 'inventory.sync', 'contoso', 'accepted', $runId],
            [$context['call'], $context['operation'], $context['tenant_id'], $context['outcome'], $context['run_id']]);
        $this->assertGreaterThanOrEqual(1, $context['round_trips']);
        $this->assertSame(0, $context['retries']);
        foreach ($logged as $event) {
            $this->assertStringNotContainsString('param-secret', $event->message . json_encode($event->context));
        }

        // The worker is another process: its records are in the channel's file.
        $log = storage_path('logs/laravel.log');
        $before = is_file($log) ? filesize($log) : 0;
        $this->work();
        $written = substr((string) file_get_contents($log), $before);
        $this->assertMatchesRegularExpression('/\.INFO: mark_running \{"call":"mark_running",.*"run_id":' . $runId . '[,}]/', $written);
        $this->assertMatchesRegularExpression('/\.INFO: complete \{"call":"complete",.*"run_id":' . $runId . '[,}]/', $written);
    }

    public function test_a_named_channel_and_level_are_honoured(): void
    {
        $path = storage_path('logs/startgate-test.log');
        @unlink($path);
        config([
            'logging.channels.gate' => ['driver' => 'single', 'path' => $path, 'level' => 'debug'],
            'startgate.log_channel' => 'gate',
            'startgate.log_level' => 'debug',
        ]);
        $this->app->forgetInstance(Gate::class);
        Facade::clearResolvedInstance(Gate::class);
        $this->press('fabrikam');
        $written = (string) file_get_contents($path);
        $this->assertStringContainsString('.INFO: start inventory.sync: blocked {"call":"start"', $written);
        $this->assertStringContainsString('"reason_code":"provider_consent_missing"', $written);
        // debug: the reads are logged too.
        Startgate::listRuns([]);
        $this->assertStringContainsString('.DEBUG: list_runs {"call":"list_runs"', (string) file_get_contents($path));
        @unlink($path);
    }
}
