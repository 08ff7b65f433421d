<?php
// One of the racing PHP processes: random starts on hot scopes, runs driven to
// completion or abandoned (they go stale and are taken over), occasional reaps.
// Prints one JSON line per accepted result, in the event format of
// `startgate-stress check`. Usage: race_worker.php URL WORKER ITERATIONS
// It makes at least ITERATIONS calls and goes on for at least RACE_SECONDS, so
// that abandoned runs go stale and are taken over however fast the calls are.

declare(strict_types=1);

require_once dirname(__DIR__) . '/startgate.php';

use Startgate\Gate;

[, $url, $worker, $iterations] = $argv;
mt_srand(1000 + (int) $worker);
$registry = dirname(__DIR__, 3) . '/tests/race_registry.toml';
$gate = Gate::open($url, $registry, ['statement_timeout_ms' => 20000, 'acquire_timeout_ms' => 20000]);
$actor = ['id' => "php-$worker", 'is_member' => true, 'capabilities' => ['sync']];
$owned = [];
$counts = [];
$emit = static function (array $result) use (&$owned): void {
    if ($result['outcome'] === 'accepted' && $result['run'] !== null) {
        $run = $result['run'];
        echo json_encode(['event' => 'accepted', 'run_id' => $run['id'], 'fencing_token' => $run['fencing_token'],
            'tenant_id' => $run['tenant_id'], 'replaced_run_id' => $result['replaced_run_id']]), "\n";
        $owned[] = ['id' => $run['id'], 'token' => $run['fencing_token'], 'running' => false];
    }
};
const RACE_SECONDS = 2;
$until = hrtime(true) + RACE_SECONDS * 1_000_000_000;
for ($i = 0; $i < (int) $iterations || hrtime(true) < $until; $i++) {
    $roll = mt_rand(0, 99);
    try {
        if ($owned === [] || $roll < 40) {
            $op = mt_rand(0, 1) ? 'inventory.sync' : 'compliance.snapshot';
            $result = $gate->start(['operation' => $op, 'tenant_id' => 'tenant-' . mt_rand(0, 2), 'actor' => $actor]);
            $counts[$result['outcome']] = ($counts[$result['outcome']] ?? 0) + 1;
            $emit($result);
        } elseif ($roll < 92) {
            $k = array_rand($owned);
            $run = $owned[$k];
            if (!$run['running']) {
                $gate->markRunning($run['id'], $run['token']);
                $owned[$k]['running'] = true;
            } else {
                unset($owned[$k]);
                $done = $gate->complete(['run_id' => $run['id'], 'fencing_token' => $run['token'], 'outcome' => 'succeeded']);
                $counts['completed'] = ($counts['completed'] ?? 0) + 1;
            }
        } elseif ($roll < 97) {
            unset($owned[array_rand($owned)]);
            $counts['abandoned'] = ($counts['abandoned'] ?? 0) + 1;
        } else {
            $gate->reapStale();
        }
    } catch (Startgate\Exception $e) {
        // A run taken over or reaped: the worker must stop working on it.
        if ($e->getErrorCode() !== 'invalid_transition') {
            fwrite(STDERR, "unexpected error: {$e->getErrorCode()}: {$e->getMessage()}\n");
            exit(1);
        }
        $counts['fenced'] = ($counts['fenced'] ?? 0) + 1;
        $owned = array_values(array_filter($owned, static fn ($r) => $r['id'] !== ($run['id'] ?? null)));
    }
    $owned = array_values($owned);
}
echo json_encode(['event' => 'summary', 'calls' => $i, 'counts' => (object) $counts]), "\n";
