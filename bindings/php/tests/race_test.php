<?php
// Four PHP processes race on three hot PostgreSQL scopes; the database's
// history is then checked by the same checker as the Rust stress tests.

declare(strict_types=1);

use Startgate\Gate;

test('4 PHP processes on hot PostgreSQL scopes never double-admit', function (): void {
    $url = postgresUrl('race');
    $gate = Gate::open($url, registryPath(), ['share' => false]);
    $gate->migrate();
    for ($t = 0; $t < 3; $t++) {
        $gate->upsertConnection(readyConnection("tenant-$t"));
    }
    $workers = [];
    for ($w = 0; $w < 4; $w++) {
        $workers[] = proc_open([PHP_BINARY, __DIR__ . '/race_worker.php', $url, (string) $w, '3000'], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes[$w]);
    }
    $events = '';
    foreach ($workers as $w => $process) {
        $events .= stream_get_contents($pipes[$w][1]);
        $stderr = stream_get_contents($pipes[$w][2]);
        same(0, proc_close($process), "worker $w exit ($stderr)");
    }
    $accepted = substr_count($events, '"event":"accepted"');
    check($accepted >= 30, "only $accepted admissions: the race did not happen");
    $checker = (getenv('STARTGATE_BUILD_DIR') ?: repo('target/debug')) . '/startgate-stress';
    $check = proc_open([$checker, 'check', '--database', $url], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $io);
    fwrite($io[0], $events);
    fclose($io[0]);
    $verdict = json_decode(stream_get_contents($io[1]), true);
    $stderr = stream_get_contents($io[2]);
    $status = proc_close($check);
    check(is_array($verdict), "checker answered ($stderr)");
    same([], $verdict['violations'], 'violations');
    same($verdict['accepted_results'], $verdict['accepted_attempts'], 'every accepted result has its audit row');
    same(0, $status, 'checker exit status');
    fwrite(STDERR, sprintf("\n[race] 4 PHP processes: %d admitted runs, %d takeovers, 0 violations\n", $verdict['admitted_runs'], $verdict['takeovers']));
});
