<?php
// The shared conformance vectors through PHP, on SQLite and PostgreSQL.

declare(strict_types=1);

require_once __DIR__ . '/conformance.php';

use Startgate\Gate;

test('conformance vectors pass on SQLite', function (): void {
    $passed = runConformance(fn () => sqliteUrl('conformance'));
    check($passed >= 25, "$passed scenarios");
});

test('conformance vectors pass with facts from a host view', function (): void {
    $url = postgresUrl('hostview');
    $database = substr($url, strrpos($url, '/') + 1);
    Gate::open($url, repo('tests/conformance/registry.toml'), ['share' => false])->migrate();
    exec('psql -q -v ON_ERROR_STOP=1 ' . escapeshellarg($url) . ' -f ' . escapeshellarg(repo('tests/conformance/host_view.sql')) . ' 2>&1', $output, $status);
    check($status === 0, 'host_view.sql: ' . implode("\n", $output));
    $first = true;
    $passed = runConformance(function () use ($url, $database, &$first): string {
        if (!$first) {
            psql('TRUNCATE startgate.operation_runs, startgate.start_attempts, public.host_tenant_connections RESTART IDENTITY', $database);
        }
        $first = false;
        return $url;
    }, false, true);
    check($passed >= 25, "$passed scenarios");
});

test('conformance vectors pass on PostgreSQL', function (): void {
    $url = postgresUrl('conformance');
    $database = substr($url, strrpos($url, '/') + 1);
    $first = true;
    $passed = runConformance(function () use ($url, $database, &$first): string {
        if (!$first) {
            psql('TRUNCATE startgate.operation_runs, startgate.start_attempts, startgate.provider_connections RESTART IDENTITY', $database);
        }
        $first = false;
        return $url;
    });
    check($passed >= 25, "$passed scenarios");
});
