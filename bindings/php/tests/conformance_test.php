<?php
// The shared conformance vectors through PHP, on SQLite and PostgreSQL.

declare(strict_types=1);

require_once __DIR__ . '/conformance.php';

test('conformance vectors pass on SQLite', function (): void {
    $passed = runConformance(fn () => sqliteUrl('conformance'));
    check($passed >= 25, "$passed scenarios");
});

test('conformance vectors pass on PostgreSQL', function (): void {
    $url = postgresUrl('conformance');
    $database = substr($url, strrpos($url, '/') + 1);
    $first = true;
    $passed = runConformance(function () use ($url, $database, &$first): string {
        if (!$first) {
            psql('TRUNCATE operation_runs, start_attempts, provider_connections RESTART IDENTITY', $database);
        }
        $first = false;
        return $url;
    });
    check($passed >= 25, "$passed scenarios");
});
