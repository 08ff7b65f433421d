<?php

namespace Tests\Feature;

use Illuminate\Console\Scheduling\Schedule;
use Illuminate\Support\Facades\DB;
use Startgate\Exception;
use Startgate\Gate;
use Startgate\Laravel\Facades\Startgate;
use Startgate\Laravel\GateConfig;
use Startgate\Laravel\StartgateServiceProvider;
use Tests\TestCase;

final class ServiceProviderTest extends TestCase
{
    public function test_the_package_is_discovered_from_composer(): void
    {
        // Not listed in config/app.php: Laravel found it in vendor/composer/installed.json.
        $this->assertNotContains(StartgateServiceProvider::class, config('app.providers'));
        $this->assertArrayHasKey(StartgateServiceProvider::class, $this->app->getLoadedProviders());
        $manifest = require $this->app->getCachedPackagesPath();
        $this->assertSame([StartgateServiceProvider::class], $manifest['startgate/startgate']['providers']);
        $this->assertSame('Startgate\\Laravel\\Facades\\Startgate', $manifest['startgate/startgate']['aliases']['Startgate']);
    }

    public function test_one_shared_gate_per_application(): void
    {
        $gate = $this->app->make(Gate::class);
        $this->assertSame($gate, $this->app->make(Gate::class));
        $this->assertSame($gate, $this->app->make('startgate'));
        $this->assertSame($gate, Startgate::getFacadeRoot());
    }

    public function test_the_gate_uses_the_apps_own_database_in_its_own_schema(): void
    {
        $database = config('database.connections.pgsql.database');
        $this->assertSame(
            "postgres://postgres@127.0.0.1:5432/$database?sslmode=prefer&application_name=startgate",
            GateConfig::url(config('startgate'), config('database.connections'), config('database.default')),
        );
        $tables = array_map(
            fn ($row) => "$row->table_schema.$row->table_name",
            DB::select("SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('operation_runs', 'provider_connections') ORDER BY 1, 2"),
        );
        $this->assertSame(['public.operation_runs', 'public.provider_connections', 'startgate.operation_runs', 'startgate.provider_connections'], $tables);
        // The app's own operation_runs is not the gate's.
        $this->assertContains('tenant_key', array_column(DB::select("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'operation_runs'"), 'column_name'));
    }

    public function test_the_config_defaults_and_what_overrides_them(): void
    {
        $this->assertSame('startgate', config('startgate.schema'));
        $this->assertSame(base_path('startgate.toml'), config('startgate.registry'));
        $connections = config('database.connections');
        $explicit = ['url' => 'postgres://gate@db.internal:6432/ops?sslmode=verify-full'] + config('startgate');
        $this->assertSame('postgres://gate@db.internal:6432/ops?sslmode=verify-full&application_name=startgate', GateConfig::url($explicit, $connections, 'pgsql'));
        $named = ['connection' => 'ops'] + config('startgate');
        $withOps = $connections + ['ops' => ['driver' => 'pgsql', 'host' => '10.0.0.7', 'port' => '5433', 'database' => 'ops db', 'username' => 'gate', 'password' => 'p@ss/word', 'sslmode' => 'verify-ca', 'sslrootcert' => '/etc/ssl/ca.pem']];
        $this->assertSame(
            'postgres://gate:p%40ss%2Fword@10.0.0.7:5433/ops%20db?sslmode=verify-ca&sslrootcert=%2Fetc%2Fssl%2Fca.pem&application_name=startgate',
            GateConfig::url($named, $withOps, 'pgsql'),
        );
        $this->assertSame(
            ['share' => true, 'max_connections' => 2, 'connect_timeout_ms' => 5000, 'acquire_timeout_ms' => 5000, 'statement_timeout_ms' => 5000, 'schema' => 'startgate'],
            GateConfig::options(config('startgate')),
        );
        $this->assertSame(7, GateConfig::options(['max_connections' => '7'])['max_connections'], 'digits from the environment are a number');
    }

    public function test_bad_config_is_refused_naming_its_key(): void
    {
        $cases = [
            [['connection' => 'mysql'], ['mysql' => ['driver' => 'mysql']], 'connection', 'uses the mysql driver'],
            [['connection' => 'nope'], [], 'connection', 'no database connection named "nope"'],
            [['connection' => 'odd'], ['odd' => ['driver' => 'pgsql', 'port' => '54x']], 'connection', 'not a port number'],
            [['max_connections' => '2x'] + config('startgate'), config('database.connections'), 'max_connections', ''],
            [['statement_timeout_ms' => '1.5'] + config('startgate'), config('database.connections'), 'statement_timeout_ms', ''],
        ];
        foreach ($cases as [$config, $connections, $field, $words]) {
            try {
                GateConfig::open($config + config('startgate'), $connections, 'pgsql');
                $this->fail("opened with $field wrong");
            } catch (Exception $e) {
                $this->assertSame(Exception::INVALID_REQUEST, $e->getErrorCode(), $e->getMessage());
                $this->assertSame($field, $e->getField(), $e->getMessage());
                $this->assertStringContainsString($words, $e->getMessage());
            }
        }
    }

    public function test_reap_is_on_the_schedule_every_minute(): void
    {
        $events = array_values(array_filter(
            $this->app->make(Schedule::class)->events(),
            fn ($event) => str_contains((string) $event->command, 'startgate:reap'),
        ));
        $this->assertCount(1, $events);
        $this->assertSame('* * * * *', $events[0]->expression);
    }
}
