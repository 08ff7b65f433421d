<?php
// The plain-PHP quickstart (bindings/php/examples/quickstart.php) runs, and
// the README shows it verbatim.

declare(strict_types=1);

test('the quickstart queues, dedupes, blocks and runs the job', function (): void {
    foreach ([sqliteUrl('example'), postgresUrl('example')] as $url) {
        exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg(repo('bindings/php/examples/quickstart.php')) . ' ' . escapeshellarg($url) . ' 2>&1', $lines, $status);
        $output = implode("\n", $lines);
        $lines = [];
        same(0, $status, "quickstart exit status:\n$output");
        foreach ([
            'contoso: [success] Inventory sync queued',
            'contoso: [info] Inventory sync already running',
            'fabrikam: [danger] Inventory sync blocked — Admin consent has not been granted',
            'Grant admin consent → /admin/tenants/fabrikam/provider-connections/graph-fab/consent',
            'run 1 on graph-main: [success] Inventory sync succeeded',
        ] as $needle) {
            check(str_contains($output, $needle), "quickstart output lacks \"$needle\":\n$output");
        }
        check(!str_contains($output, 'run 2 on'), "only the accepted run reaches the worker:\n$output");
    }
});

test('the README shows the quickstart verbatim', function (): void {
    $readme = (string) file_get_contents(repo('README.md'));
    $example = (string) file_get_contents(repo('bindings/php/examples/quickstart.php'));
    $marker = "<!-- quickstart: bindings/php/examples/quickstart.php -->\n```php\n";
    $start = strpos($readme, $marker);
    check($start !== false, 'README has the PHP quickstart marker');
    $start += strlen($marker);
    $end = strpos($readme, '```', $start);
    same($example, substr($readme, $start, $end - $start), 'README PHP quickstart');
});
