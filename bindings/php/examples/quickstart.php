<?php
// php bindings/php/examples/quickstart.php [DATABASE_URL]
// The "Inventory sync" button clicked twice on one tenant and once on a
// tenant without admin consent, then the worker side of the queued run.

declare(strict_types=1);

require_once dirname(__DIR__) . '/startgate.php'; // installed: require 'Startgate/autoload.php';

use Startgate\Exception;
use Startgate\Gate;

$url = $argv[1] ?? sys_get_temp_dir() . '/startgate-quickstart-' . getmypid() . '.db';
$gate = Gate::open($url, dirname(__DIR__, 3) . '/examples/registry.toml');
$gate->migrate();
$ready = ['provider' => 'microsoft_graph', 'is_default' => true, 'consent' => 'granted', 'credential' => 'present', 'health' => 'ok'];
$gate->upsertConnection(['tenant_id' => 'contoso', 'id' => 'graph-main'] + $ready);
$gate->upsertConnection(['tenant_id' => 'fabrikam', 'id' => 'graph-fab', 'consent' => 'missing'] + $ready);
$alice = ['id' => 'alice', 'is_member' => true, 'capabilities' => ['inventory.sync']];

// The web request: one start, one piece of feedback, a job only when queued.
$queue = [];
foreach (['contoso', 'contoso', 'fabrikam'] as $tenant) {
    $result = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => $tenant, 'actor' => $alice]);
    $shown = $gate->present($result); // tone: success | info | warning | danger
    printf("%s: [%s] %s — %s\n", $tenant, $shown['tone'], $shown['title'], $shown['body']);
    foreach ($shown['actions'] as $action) {
        printf("    %s → %s\n", $action['label'], $action['url']);
    }
    if ($result['outcome'] === 'accepted') {
        $queue[] = $result['run']; // dispatch the job with the run: its id, token and pinned connection
    }
}

// The worker: mark running, heartbeat while working, complete.
foreach ($queue as $run) {
    try {
        $gate->markRunning($run['id'], $run['fencing_token']);
        // ... call the provider through $run['provider_connection_id'], and only that one ...
        $gate->heartbeat($run['id'], $run['fencing_token']);
        $done = $gate->complete(['run_id' => $run['id'], 'fencing_token' => $run['fencing_token'], 'outcome' => 'succeeded', 'summary' => ['items' => 40]]);
        $told = $gate->presentRun($done['run']);
        printf("run %d on %s: [%s] %s\n", $run['id'], $run['provider_connection_id'], $told['tone'], $told['title']);
    } catch (Exception $e) {
        if ($e->getErrorCode() !== Exception::INVALID_TRANSITION) {
            throw $e;
        }
        // Reaped, taken over or cancelled: the scope is someone else's now. Stop.
    }
}
$gate->close();
if (!isset($argv[1])) {
    array_map('unlink', glob("$url*"));
}
