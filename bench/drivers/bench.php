<?php
// Surface-overhead driver for PHP: php bench.php URL REGISTRY N
declare(strict_types=1);

require_once dirname(__DIR__, 2) . '/bindings/php/startgate.php';

[, $url, $registry, $n] = $argv;
$n = (int) $n;
$gate = Startgate\Gate::open($url, $registry, ['share' => false]);
$request = static fn (int $scope): array => [
    'operation' => 'inventory.sync', 'tenant_id' => 'bench', 'provider_connection_id' => "c-$scope",
    'actor' => ['id' => 'bench', 'is_member' => true, 'capabilities' => ['inventory.sync', 'compliance.read']],
];
for ($i = 0; $i < 50; $i++) {
    $gate->start($request($n + $i));
}
$result = $gate->start($request($n + 50));
$present = [];
for ($i = 0; $i < $n; $i++) {
    $t = hrtime(true);
    $gate->present($result);
    $present[] = hrtime(true) - $t;
}
$start = [];
for ($i = 0; $i < $n; $i++) {
    $req = $request($i);
    $t = hrtime(true);
    $r = $gate->start($req);
    $start[] = hrtime(true) - $t;
    if ($r['outcome'] !== 'accepted') {
        fwrite(STDERR, "not accepted\n");
        exit(1);
    }
}
sort($present);
sort($start);
echo json_encode(['present_ns' => $present[intdiv($n, 2)], 'start_ns' => $start[intdiv($n, 2)]]), "\n";
