<?php
// Runs the example: php bindings/php/examples/demo.php [DATABASE_URL]
// An operator clicks "Inventory sync" twice and on a tenant without consent,
// then the queue worker runs the job, then an onboarding sequence advances.

declare(strict_types=1);

require_once dirname(__DIR__) . '/startgate.php';
require_once __DIR__ . '/Queue.php';
require_once __DIR__ . '/StartInventorySync.php';
require_once __DIR__ . '/SyncInventoryJob.php';

use App\Actions\StartInventorySync;
use App\Jobs\SyncInventoryJob;
use App\Support\Queue;
use Startgate\Gate;

$url = $argv[1] ?? null;
if ($url === null) {
    $file = sys_get_temp_dir() . '/startgate-php-demo-' . getmypid() . '.db';
    $url = "sqlite://$file";
    register_shutdown_function(static fn () => array_map('unlink', glob("$file*")));
}
$gate = Gate::open($url, dirname(__DIR__, 3) . '/examples/registry.toml');
$gate->migrate();
$ready = ['provider' => 'microsoft_graph', 'is_default' => true, 'consent' => 'granted', 'credential' => 'present', 'health' => 'ok'];
$gate->upsertConnection(['tenant_id' => 'contoso', 'id' => 'graph-main'] + $ready);
$gate->upsertConnection(['tenant_id' => 'fabrikam', 'id' => 'graph-fab', 'consent' => 'missing'] + $ready);

$queue = new Queue();
$action = new StartInventorySync($gate, $queue);
$alice = ['id' => 'alice', 'is_member' => true, 'capabilities' => ['inventory.sync', 'tenant.manage', 'provider.manage']];

foreach ([['contoso', 'click'], ['contoso', 'second click'], ['fabrikam', 'click']] as [$tenant, $what]) {
    $notification = $action->handle($alice, $tenant);
    printf("%s on %s: [%s] %s — %s\n", $what, $tenant, $notification['status'], $notification['title'], $notification['body']);
    foreach ($notification['actions'] as $button) {
        printf("    button: %s → %s\n", $button['label'], $button['url']);
    }
}
printf("jobs queued: %d\n", count($queue->jobs));

$syncPage = static fn (string $connection): int => 40; // the provider call would go through $connection
while (($job = $queue->next()) !== null) {
    $job->handle($gate, $queue, $syncPage);
    printf("job for run %d on %s finished\n", $job->runId, $job->providerConnectionId);
}
foreach ($queue->notifications as $sent) {
    printf("notify %s: %s — %s\n", $sent['user'], $sent['notification']['title'], $sent['notification']['body']);
}

// Onboarding: the first step is dispatched by the host, the rest by the jobs themselves.
$onboarding = $gate->startSequence(['sequence' => 'onboarding.bootstrap', 'tenant_id' => 'contoso', 'actor' => $alice]);
$queue->dispatch(new SyncInventoryJob($onboarding['run']['id'], $onboarding['run']['fencing_token'], $onboarding['provider_connection_id']));
while (($job = $queue->next()) !== null) {
    $job->handle($gate, $queue, $syncPage, 1);
    $run = $gate->getRun($job->runId);
    printf("onboarding step %s: %s\n", $run['operation'], $run['status']);
}
