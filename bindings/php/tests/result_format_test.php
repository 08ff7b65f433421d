<?php
// The package reads results as serialize() text (startgate_set_result_format):
// each must be exactly the array json_decode($json, true) gives for the
// same call's JSON, which a second handle on the same file asks for.

declare(strict_types=1);

use Startgate\Gate;

/** The library and declarations the package uses, opened for raw calls. */
function rawLibrary(): \FFI
{
    [$header, $library] = (new \ReflectionMethod(Gate::class, 'locate'))->invoke(null);
    return \FFI::cdef((string) file_get_contents($header), $library);
}

/** Calls a JSON-returning function on a raw handle; the decoded result. */
function rawJson(\FFI $ffi, \FFI\CData $gate, string $function, mixed ...$args): mixed
{
    $out = $ffi->new('char*');
    $error = $ffi->new('startgate_error*');
    $status = $ffi->$function($gate, ...[...$args, \FFI::addr($out), \FFI::addr($error)]);
    check($status === 0, "$function: status $status");
    try {
        return json_decode(\FFI::string($out), true, 512, JSON_THROW_ON_ERROR);
    } finally {
        $ffi->startgate_string_free($out);
    }
}

test('results read with unserialize equal json_decode of the same JSON', function (): void {
    $url = sqliteUrl('format');
    $options = ['manual_clock' => '2026-01-01T09:00:00Z', 'share' => false];
    $gate = Gate::open($url, registryPath(), $options);
    $gate->migrate();
    $gate->upsertConnection(readyConnection());
    // What a host's own documents may hold: keys that read as integers
    // (json_decode makes them integer keys), an empty key, floats with and
    // without a fraction, an integer past 2^53, text beyond ASCII, lists
    // and an empty object.
    $params = [
        '7' => 'seven', '' => 'empty key', 'fraction' => 0.1, 'whole' => 2.0, 'tiny' => 1.0e-7,
        'huge' => 1.5e300, 'big' => 9007199254740993, 'negative' => -42, 'text' => "Grüße \u{1F600} \"quoted\" back\\slash",
        'list' => [1, 'x', null, true, false, [], ['nested' => ['deeper' => [0]]]], 'object' => new \stdClass(),
    ];
    $accepted = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice(), 'params' => $params]);
    same('accepted', $accepted['outcome'], 'start');
    $run = $accepted['run'];
    same('seven', $run['params'][7], 'a key that reads as an integer is an integer key');
    same([0.1, 2.0, 9007199254740993, []], [$run['params']['fraction'], $run['params']['whole'], $run['params']['big'], $run['params']['object']], 'numbers keep their PHP types');

    $ffi = rawLibrary();
    $raw = $ffi->new('startgate_gate*');
    $error = $ffi->new('startgate_error*');
    $open = json_encode(['url' => $url, 'registry' => registryPath()] + $options, JSON_THROW_ON_ERROR);
    same(0, $ffi->startgate_open_json($open, \FFI::addr($raw), \FFI::addr($error)), 'raw open');
    try {
        $requests = [
            ['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice(), 'params' => $params],
            ['operation' => 'inventory.sync', 'tenant_id' => 'fabrikam', 'actor' => alice()],
            ['operation' => 'nope', 'tenant_id' => 'contoso', 'actor' => alice()],
        ];
        $requestsJson = json_encode($requests, JSON_THROW_ON_ERROR | JSON_PRESERVE_ZERO_FRACTION);
        $pairs = [
            'get_run' => [$gate->getRun($run['id']), rawJson($ffi, $raw, 'startgate_get_run', $run['id'])],
            'list_runs' => [$gate->listRuns(), rawJson($ffi, $raw, 'startgate_list_runs', null)],
            'attempts_for_run' => [$gate->attemptsForRun($run['id']), rawJson($ffi, $raw, 'startgate_attempts_for_run', $run['id'])],
            'check' => [$gate->check($requests), rawJson($ffi, $raw, 'startgate_check', $requestsJson)],
            'get_connection' => [$gate->getConnection('contoso', 'graph'), rawJson($ffi, $raw, 'startgate_get_connection', 'contoso', 'graph')],
            'absent connection' => [$gate->getConnection('contoso', 'nope'), rawJson($ffi, $raw, 'startgate_get_connection', 'contoso', 'nope')],
            'list_connections' => [$gate->listConnections('contoso'), rawJson($ffi, $raw, 'startgate_list_connections', 'contoso')],
            'present' => [$gate->present($accepted), rawJson($ffi, $raw, 'startgate_present', json_encode($accepted, JSON_THROW_ON_ERROR | JSON_PRESERVE_ZERO_FRACTION))],
            'present_run' => [$gate->presentRun($run), rawJson($ffi, $raw, 'startgate_present_run', json_encode($run, JSON_THROW_ON_ERROR | JSON_PRESERVE_ZERO_FRACTION))],
        ];
        foreach ($pairs as $call => [$serialized, $json]) {
            check($json !== null || $call === 'absent connection', "$call: the JSON handle answered");
            same($json, $serialized, $call);
        }
        same([0.1, false], [$pairs['check'][0][0]['run']['params']['fraction'], $pairs['check'][0][0]['params_differ']], 'a held scope\'s params through check');

        // The setting itself: another value is refused naming it, and changes nothing.
        same(1, $ffi->startgate_set_result_format($raw, 7, \FFI::addr($error)), 'an unknown format is invalid_request');
        same(['invalid_request', 'format'], [$ffi->startgate_error_code($error), $ffi->startgate_error_field($error)], 'the refusal names format');
        $ffi->startgate_error_free($error);
        same($pairs['get_run'][1], rawJson($ffi, $raw, 'startgate_get_run', $run['id']), 'the refused setting left JSON');
        same(0, $ffi->startgate_set_result_format($raw, $ffi->STARTGATE_RESULT_PHP_SERIALIZE, null), 'PHP serialize format');
        $out = $ffi->new('char*');
        same(0, $ffi->startgate_get_run($raw, $run['id'], \FFI::addr($out), null), 'get_run in the PHP format');
        $text = \FFI::string($out);
        $ffi->startgate_string_free($out);
        same($pairs['get_run'][1], unserialize($text, ['allowed_classes' => false]), 'the raw handle now hands over serialize() text');
    } finally {
        $ffi->startgate_free($raw);
    }
});
