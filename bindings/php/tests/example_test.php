<?php
// The example host (bindings/php/examples) runs, and the README shows it verbatim.

declare(strict_types=1);

test('the Laravel-style example queues, dedupes, blocks and runs the jobs', function (): void {
    foreach ([sqliteUrl('example'), postgresUrl('example')] as $url) {
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg(repo('bindings/php/examples/demo.php')) . ' ' . escapeshellarg($url) . ' 2>&1', $lines, $status);
        $output = implode("\n", $lines);
        $lines = [];
        same(0, $status, "demo exit status:\n$output");
        foreach ([
            'click on contoso: [success] Inventory sync queued',
            'second click on contoso: [info] Inventory sync already running',
            'click on fabrikam: [danger] Inventory sync blocked — Admin consent has not been granted',
            'button: Grant admin consent → /admin/tenants/fabrikam/provider-connections/graph-fab/consent',
            'jobs queued: 1',
            'job for run 1 on graph-main finished',
            'notify alice: Inventory sync succeeded',
            'onboarding step tenant.verify: succeeded',
            'onboarding step provider.connection.check: succeeded',
            'onboarding step inventory.sync: succeeded',
        ] as $needle) {
            check(str_contains($output, $needle), "demo output lacks \"$needle\":\n$output");
        }
    }
});

test('the README shows the example action verbatim', function (): void {
    $readme = (string) file_get_contents(repo('README.md'));
    $example = (string) file_get_contents(repo('bindings/php/examples/StartInventorySync.php'));
    $marker = "<!-- quickstart: bindings/php/examples/StartInventorySync.php -->\n```php\n";
    $start = strpos($readme, $marker);
    check($start !== false, 'README has the PHP quickstart marker');
    $start += strlen($marker);
    $end = strpos($readme, '```', $start);
    same($example, substr($readme, $start, $end - $start), 'README PHP quickstart');
});
