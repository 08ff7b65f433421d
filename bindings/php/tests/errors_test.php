<?php
// Every stable error code reaches PHP as Startgate\Exception with that code,
// with a message naming the field; malformed input writes nothing.

declare(strict_types=1);

use Startgate\Gate;

test('invalid input is invalid_request naming the field, and writes nothing', function (): void {
    $gate = Gate::open(sqliteUrl('errors'), registryPath(), ['share' => false]);
    $gate->migrate();
    $base = ['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice()];
    throwsCode('invalid_request', fn () => $gate->start(['tenant_id' => 'contoso', 'actor' => alice()]), 'operation');
    throwsCode('invalid_request', fn () => $gate->start(['tenant_id' => '', 'actor' => alice()] + $base), 'tenant_id');
    throwsCode('invalid_request', fn () => $gate->start(['actor' => ['id' => 'a', 'is_member' => 'yes']] + $base), 'actor.is_member');
    throwsCode('invalid_request', fn () => $gate->start($base + ['colour' => 'blue']), 'colour');
    throwsCode('invalid_request', fn () => $gate->start($base + ['params' => [1, 2]]), 'params');
    throwsCode('invalid_request', fn () => $gate->start($base + ['subject' => "bad\xff"]), 'subject: must be valid Unicode text');
    throwsCode('invalid_request', fn () => $gate->start($base + ['subject' => str_repeat('x', 10 * 1024 * 1024)]), 'limit');
    throwsCode('invalid_request', fn () => $gate->listRuns(['active' => 'yes']), 'active');
    throwsCode('invalid_request', fn () => $gate->upsertConnection(['tenant_id' => 'c', 'id' => 'x', 'provider' => 'p', 'secret' => 's']), 'secret');
    throwsCode('invalid_request', fn () => $gate->advanceClock(1), 'clock');
    same([], $gate->listRuns(), 'nothing was written');
});

test('each stable code maps to a Startgate\Exception', function (): void {
    $e = throwsCode('registry_invalid', fn () => Gate::open(sqliteUrl('e'), null, ['registry_toml' => "[operations.x]\nlabel = 1\n"]), 'operations.x.label');
    same(3, $e->getCode(), 'the C status number is the exception code');
    $gate = Gate::open(sqliteUrl('codes'), registryPath(), ['share' => false]);
    $gate->migrate();
    throwsCode('unknown_operation', fn () => $gate->start(['operation' => 'inventory.synk', 'tenant_id' => 't', 'actor' => alice()]), 'inventory.synk');
    throwsCode('run_not_found', fn () => $gate->getRun(424242), '424242');
    $gate->upsertConnection(readyConnection());
    $run = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice()])['run'];
    throwsCode('invalid_transition', fn () => $gate->markRunning($run['id'], 99), 'fencing token 99');
    throwsCode('store_unavailable', fn () => Gate::open('postgres://postgres@127.0.0.1:1/none', registryPath(), ['connect_timeout_ms' => 500, 'acquire_timeout_ms' => 500]), 'PostgreSQL');
    $gate->close();
    throwsCode('store_unavailable', fn () => $gate->getRun($run['id']), 'closed');
    $pooled = postgresUrl('pooled');
    exec(escapeshellarg(repo('scripts/pgbouncer-up')), $out, $status);
    check($status === 0, 'pgbouncer-up');
    $throughBouncer = 'postgres://postgres@127.0.0.1:6433/' . substr($pooled, strrpos($pooled, '/') + 1) . '?pool_mode=transaction';
    throwsCode('migration_failed', fn () => Gate::open($throughBouncer, registryPath(), ['share' => false])->migrate(), 'directly');
});

test('a statement blocked by a lock is store_timeout, within the bound', function (): void {
    $url = postgresUrl('timeout');
    $gate = Gate::open($url, registryPath(), ['share' => false, 'statement_timeout_ms' => 500, 'acquire_timeout_ms' => 500]);
    $gate->migrate();
    $gate->upsertConnection(readyConnection());
    // Another session holds an exclusive lock on the runs table for 3 seconds.
    $locker = proc_open(['psql', '-q', $url, '-c', 'BEGIN; LOCK TABLE startgate.operation_runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;'], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    usleep(500_000);
    $started = microtime(true);
    throwsCode('store_timeout', fn () => $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice()]));
    check(microtime(true) - $started < 2.5, 'answered within the bound');
    proc_close($locker);
    same('accepted', $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice()])['outcome'], 'works again once the lock is gone');
});

test('a wrong PHP type is invalid_request naming the field, never a TypeError or a coercion', function (): void {
    $gate = Gate::open(sqliteUrl('types'), registryPath(), ['share' => false]);
    $gate->migrate();
    $gate->upsertConnection(['tenant_id' => 'contoso', 'id' => 'graph', 'provider' => 'p', 'is_default' => true,
        'consent' => 'granted', 'credential' => 'present', 'health' => 'ok']);
    $run = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice()])['run'];
    $cases = [
        ['run_id', fn () => $gate->markRunning('1', $run['fencing_token'])],
        ['run_id', fn () => $gate->markRunning(1.0 * $run['id'], $run['fencing_token'])],
        ['run_id', fn () => $gate->markRunning(NAN, $run['fencing_token'])],
        ['run_id', fn () => $gate->markRunning(2 ** 63, $run['fencing_token'])],
        ['run_id', fn () => $gate->markRunning(true, $run['fencing_token'])],
        ['fencing_token', fn () => $gate->heartbeat($run['id'], null)],
        ['run_id', fn () => $gate->getRun([])],
        ['tenant_id', fn () => $gate->getConnection(42, 'graph')],
        ['tenant_id', fn () => $gate->getConnection("contoso\0-other", 'graph')],
        ['tenant_id', fn () => $gate->listConnections("contoso\xff")],
        ['reason_code', fn () => $gate->cancel($run['id'], "operator\0-stop")],
        ['request', fn () => $gate->start('inventory.sync')],
        ['result', fn () => $gate->present('accepted')],
        ['run', fn () => $gate->presentRun(7)],
        ['seconds', fn () => $gate->advanceClock('soon')],
        ['url', fn () => Gate::open("sqlite::memory:\0/var/lib/app/real.db", registryPath())],
        ['url', fn () => Gate::open(5, registryPath())],
        ['registry', fn () => Gate::open('sqlite::memory:', ['not', 'a', 'path'])],
        ['options', fn () => Gate::open('sqlite::memory:', registryPath(), 'share')],
    ];
    foreach ($cases as [$field, $call]) {
        try {
            $call();
            throw new AssertionFailed("no exception for $field");
        } catch (\Startgate\Exception $e) {
            same('invalid_request', $e->getErrorCode(), $e->getMessage());
            same($field, $e->getField(), $e->getMessage());
            check(str_contains($e->getMessage(), ": $field: "), $e->getMessage());
        }
    }
    // Nothing above touched the run: no id was coerced into it.
    same('queued', $gate->getRun($run['id'])['status'], 'the run is untouched');
});
