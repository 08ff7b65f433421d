<?php
// A gate opened before pcntl_fork() keeps working in the children and in the
// parent (PHP-FPM's master loads and forks; workers inherit).

declare(strict_types=1);

use Startgate\Gate;

function lifecycle(Gate $gate, string $tenant): void
{
    $result = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => $tenant, 'actor' => alice()]);
    if ($result['outcome'] !== 'accepted') {
        throw new \RuntimeException("$tenant: {$result['outcome']}");
    }
    $run = $result['run'];
    $gate->markRunning($run['id'], $run['fencing_token']);
    $gate->complete(['run_id' => $run['id'], 'fencing_token' => $run['fencing_token'], 'outcome' => 'succeeded']);
}

function forkAndUse(string $url): void
{
    $gate = Gate::open($url, registryPath());
    $gate->migrate();
    for ($i = 0; $i <= 3; $i++) {
        $gate->upsertConnection(readyConnection("tenant-$i"));
    }
    lifecycle($gate, 'tenant-0');
    $children = [];
    for ($i = 1; $i <= 3; $i++) {
        $pid = pcntl_fork();
        check($pid >= 0, 'fork');
        if ($pid === 0) {
            try {
                lifecycle($gate, "tenant-$i");
                lifecycle($gate, "tenant-$i");
                exit(0);
            } catch (\Throwable $e) {
                fwrite(STDERR, "child $i: {$e->getMessage()}\n");
                exit(1);
            }
        }
        $children[] = $pid;
    }
    foreach ($children as $pid) {
        pcntl_waitpid($pid, $status);
        check(pcntl_wifexited($status) && pcntl_wexitstatus($status) === 0, "child $pid succeeded");
    }
    lifecycle($gate, 'tenant-0');
    same(8, count($gate->listRuns(['status' => 'succeeded'])), 'every run of parent and children recorded');
}

test('pcntl_fork children use the parent\'s gate on SQLite', fn () => forkAndUse(sqliteUrl('fork')));
test('pcntl_fork children use the parent\'s gate on PostgreSQL', fn () => forkAndUse(postgresUrl('fork')));
