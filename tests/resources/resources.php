<?php
// Resource bounds through the PHP binding (same protocol as resources.c):
// php resources.php URL REGISTRY_FILE HANDLES CALLS
// Handles are opened with 'share' => false so each open/close is real.
declare(strict_types=1);

require_once dirname(__DIR__, 2) . '/bindings/php/startgate.php';

use Startgate\Gate;

[, $url, $registry, $handles, $n] = $argv;
$handles = (int) $handles;
$n = (int) $n;
$request = ['operation' => 'inventory.sync', 'tenant_id' => 'contoso',
    'actor' => ['id' => 'ops', 'is_member' => true, 'capabilities' => ['inventory.sync']]];
$options = ['share' => false, 'max_connections' => 2];

$rssKb = static function (): int {
    $fields = explode(' ', (string) file_get_contents('/proc/self/statm'));
    return intdiv((int) $fields[1] * 4096, 1024);
};
$cycleHandles = static function (int $count) use ($url, $registry, $options): void {
    for ($i = 0; $i < $count; $i++) {
        $gate = Gate::open($url, $registry, $options);
        $gate->listConnections('contoso');
        $gate->close();
    }
};
$calls = static function (Gate $gate, array $result, int $count) use ($request): void {
    for ($i = 0; $i < $count; $i++) {
        if ($i % 100 === 0) {
            $gate->check([$request]);
        } else {
            $gate->present($result);
        }
    }
};

$gate = Gate::open($url, $registry, $options);
$gate->migrate();
$gate->upsertConnection(['tenant_id' => 'contoso', 'id' => 'graph', 'provider' => 'microsoft_graph',
    'is_default' => true, 'consent' => 'granted', 'credential' => 'present', 'health' => 'ok']);
$result = $gate->start($request);
$cycleHandles(max(intdiv($handles, 10), 1000));
$calls($gate, $result, intdiv($n, 10) + 1);
gc_collect_cycles();
$before = $rssKb();
$cycleHandles($handles);
gc_collect_cycles();
$afterHandles = $rssKb();
$calls($gate, $result, $n);
gc_collect_cycles();
$after = $rssKb();
echo json_encode(['surface' => 'php', 'handles' => $handles, 'calls' => $n, 'rss_before_kb' => $before,
    'rss_after_handles_kb' => $afterHandles, 'rss_after_kb' => $after]), "\n";
fgets(STDIN);
$gate->close();
