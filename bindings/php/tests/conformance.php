<?php
// The PHP runner of the conformance vectors (format: tests/conformance/README.md).
// Every call goes through Startgate\Gate's own methods.

declare(strict_types=1);

use Startgate\Gate;

const EXPECTATION_KEYS = ['expect', 'expect_error', 'expect_message', 'expect_field', 'present', 'present_run', 'save'];

/**
 * Runs every scenario on fresh databases from $open(); returns the number
 * passed. $hostView: the connection facts are a host table's, read through a
 * view (tests/conformance/host_view.sql); connections are written the host's way.
 */
function runConformance(callable $freshUrl, bool $migrate = true, bool $hostView = false): int
{
    $files = glob(repo('tests/conformance/*.json'));
    sort($files);
    $failures = [];
    foreach ($files as $file) {
        try {
            runScenario($file, $freshUrl(), $migrate, $hostView);
        } catch (\Throwable $e) {
            $failures[] = basename($file) . ': ' . $e->getMessage();
        }
    }
    check($failures === [], count($failures) . " scenario(s) failed:\n" . implode("\n", $failures));
    return count($files);
}

/** The host application writing its own table (tests/conformance/host_view.sql). */
function hostSaveConnection(string $url, array $connection): void
{
    $process = proc_open(
        ['psql', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'doc=' . json_encode($connection, JSON_THROW_ON_ERROR), $url],
        [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']],
        $pipes,
    );
    fwrite($pipes[0], "SELECT public.host_save_connection(:'doc'::jsonb);\n");
    fclose($pipes[0]);
    $errors = stream_get_contents($pipes[2]);
    check(proc_close($process) === 0, "host_save_connection: $errors");
}

function runScenario(string $file, string $url, bool $migrate, bool $hostView = false): void
{
    $scenario = json_decode((string) file_get_contents($file), false, 512, JSON_THROW_ON_ERROR);
    $options = ['manual_clock' => $scenario->clock ?? '2026-01-01T09:00:00Z', 'share' => false];
    $gate = isset($scenario->registry)
        ? Gate::open($url, dirname($file) . '/' . $scenario->registry, $options)
        : Gate::open($url, null, $options + ['registry_toml' => $scenario->registry_toml]);
    if ($migrate) {
        $gate->migrate();
    }
    foreach ($scenario->connections ?? [] as $connection) {
        if ($hostView) {
            hostSaveConnection($url, toArray($connection));
        } else {
            $gate->upsertConnection(toArray($connection));
        }
    }
    $vars = [];
    foreach ($scenario->calls as $i => $call) {
        $name = $call->call;
        $where = "calls[$i] ($name)";
        $args = [];
        foreach ((array) $call as $key => $value) {
            if (!in_array($key, EXPECTATION_KEYS, true)) {
                $args[$key] = toArray(substitute($value, $vars, $where));
            }
        }
        if ($hostView && $name === 'upsert_connection') {
            if (isset($call->expect_error)) {
                continue; // the gate's own table's validation: not this setup's subject
            }
            hostSaveConnection($url, $args['connection']);
            [$name, $args] = ['get_connection', ['tenant_id' => $args['connection']['tenant_id'], 'id' => $args['connection']['id']]];
        }
        $error = null;
        $result = null;
        try {
            $result = invoke($gate, $name, $args);
        } catch (\Startgate\Exception $e) {
            $error = ['code' => $e->getErrorCode(), 'message' => $e->getMessage(), 'field' => $e->getField()];
        }
        if (isset($call->expect_error)) {
            if ($error === null) {
                throw new AssertionFailed("$where: expected error {$call->expect_error}, got success");
            }
            same($call->expect_error, $error['code'], "$where: error code ({$error['message']})");
            if (isset($call->expect_message)) {
                check(str_contains($error['message'], $call->expect_message), "$where: message {$error['message']} lacks {$call->expect_message}");
            }
            if (isset($call->expect_field)) {
                check(str_contains($error['message'], ": {$call->expect_field}: "), "$where: message {$error['message']} does not name {$call->expect_field}");
                if ($error['code'] === 'invalid_request') {
                    same($call->expect_field, $error['field'], "$where: the exception's field");
                }
            }
            continue;
        }
        if ($error !== null) {
            throw new AssertionFailed("$where: unexpected error {$error['code']}: {$error['message']}");
        }
        foreach ((array) ($call->save ?? []) as $var => $path) {
            $value = lookup($result, $path);
            check($value !== null, "$where: nothing at $path to save as $var");
            $vars[$var] = $value;
        }
        if (property_exists($call, 'expect')) {
            matches(substitute($call->expect, $vars, $where), $result, "$where: result");
        }
        if (isset($call->present)) {
            matches(substitute($call->present, $vars, $where), $gate->present($result), "$where: presentation");
        }
        if (isset($call->present_run)) {
            $run = in_array($name, ['complete', 'cancel'], true) ? $result['run'] : $result;
            matches(substitute($call->present_run, $vars, $where), $gate->presentRun($run), "$where: presentation");
        }
    }
    $gate->close();
}

function invoke(Gate $gate, string $name, array $a): mixed
{
    return match ($name) {
        'start' => $gate->start($a['request']),
        'check' => $gate->check($a['requests']),
        'start_sequence' => $gate->startSequence($a['request']),
        'mark_running' => $gate->markRunning($a['run_id'], $a['fencing_token']),
        'heartbeat' => $gate->heartbeat($a['run_id'], $a['fencing_token']),
        'complete' => $gate->complete($a['completion']),
        'cancel' => $gate->cancel($a['run_id'], $a['reason_code'] ?? null),
        'reap_stale' => $gate->reapStale(),
        'get_run' => $gate->getRun($a['run_id']),
        'list_runs' => $gate->listRuns($a['filter'] ?? []),
        'attempts_for_run' => $gate->attemptsForRun($a['run_id']),
        'upsert_connection' => $gate->upsertConnection($a['connection']),
        'get_connection' => $gate->getConnection($a['tenant_id'], $a['id']),
        'list_connections' => $gate->listConnections($a['tenant_id']),
        'advance_clock' => $gate->advanceClock($a['seconds']),
        'open' => openGate($a),
        default => throw new AssertionFailed("unknown call $name"),
    };
}

function openGate(array $a): mixed
{
    $registry = isset($a['registry']) ? dirname(__DIR__, 3) . '/tests/conformance/' . $a['registry'] : null;
    $options = ['share' => false] + (isset($a['registry_toml']) ? ['registry_toml' => $a['registry_toml']] : []);
    Gate::open($a['url'], $registry, $options)->close();
    return null;
}

/**
 * A tag (a value a JSON file cannot hold) as PHP's own form of it: `$text`
 * with UTF-16 units as UTF-8 bytes, where a lone surrogate — which PHP
 * strings cannot hold as a character — becomes the bytes a lenient encoder
 * would write for it, which are not valid UTF-8; `$number` NAN or INF;
 * `$nest` nested arrays; `$repeat` a long string. Null when not a tag.
 */
function tag(\stdClass $value): mixed
{
    $fields = get_object_vars($value);
    if (count($fields) !== 1) {
        return null;
    }
    $spec = reset($fields);
    switch (key($fields)) {
        case '$text':
            $units = [];
            foreach ($spec as $part) {
                if (is_string($part)) {
                    foreach (unpack('n*', (string) iconv('UTF-8', 'UTF-16BE', $part)) as $unit) {
                        $units[] = $unit;
                    }
                } else {
                    $units[] = $part;
                }
            }
            $out = '';
            for ($i = 0; $i < count($units); $i++) {
                $cp = $units[$i];
                if ($cp >= 0xD800 && $cp < 0xDC00 && ($units[$i + 1] ?? 0) >= 0xDC00 && ($units[$i + 1] ?? 0) < 0xE000) {
                    $cp = 0x10000 + (($cp - 0xD800) << 10) + ($units[++$i] - 0xDC00);
                }
                $out .= match (true) {
                    $cp < 0x80 => chr($cp),
                    $cp < 0x800 => chr(0xC0 | ($cp >> 6)) . chr(0x80 | ($cp & 0x3F)),
                    $cp < 0x10000 => chr(0xE0 | ($cp >> 12)) . chr(0x80 | (($cp >> 6) & 0x3F)) . chr(0x80 | ($cp & 0x3F)),
                    default => chr(0xF0 | ($cp >> 18)) . chr(0x80 | (($cp >> 12) & 0x3F)) . chr(0x80 | (($cp >> 6) & 0x3F)) . chr(0x80 | ($cp & 0x3F)),
                };
            }
            return ['tag' => $out];
        case '$number':
            return ['tag' => ['NaN' => NAN, 'Infinity' => INF, '-Infinity' => -INF][$spec]];
        case '$nest':
            $nested = [];
            for ($i = 1; $i < $spec; $i++) {
                $nested = [$nested];
            }
            return ['tag' => $nested];
        case '$repeat':
            return ['tag' => str_repeat($spec[0], $spec[1])];
    }
    return null;
}

/** stdClass trees (from the scenario) to arrays (for the Gate), tags expanded. */
function toArray(mixed $value): mixed
{
    if ($value instanceof \stdClass) {
        $tagged = tag($value);
        if ($tagged !== null) {
            return $tagged['tag'];
        }
        $value = (array) $value;
    }
    return is_array($value) ? array_map('toArray', $value) : $value;
}

function substitute(mixed $value, array $vars, string $where): mixed
{
    if (is_string($value) && str_starts_with($value, '$') && !str_starts_with($value, '${') && strlen($value) > 1) {
        $name = substr($value, 1);
        check(array_key_exists($name, $vars), "$where: variable $value was never saved");
        return $vars[$name];
    }
    if (is_string($value) && str_contains($value, '${')) {
        return preg_replace_callback('/\$\{([a-z0-9_]+)\}/i', static function ($m) use ($vars, $where) {
            check(array_key_exists($m[1], $vars), "$where: variable \${$m[1]} was never saved");
            return (string) $vars[$m[1]];
        }, $value);
    }
    if ($value instanceof \stdClass) {
        $out = new \stdClass();
        foreach ($value as $k => $v) {
            $out->$k = substitute($v, $vars, $where);
        }
        return $out;
    }
    if (is_array($value)) {
        return array_map(static fn ($v) => substitute($v, $vars, $where), $value);
    }
    return $value;
}

function lookup(mixed $value, string $path): mixed
{
    foreach (explode('.', $path) as $key) {
        if (!is_array($value)) {
            return null;
        }
        $value = $value[ctype_digit($key) ? (int) $key : $key] ?? null;
    }
    return $value;
}

/** The matching rules of tests/conformance/README.md. */
function matches(mixed $expected, mixed $actual, string $path): void
{
    if ($expected === '<any>') {
        check($actual !== null, "$path: expected a value, found null");
        return;
    }
    if ($expected instanceof \stdClass) {
        check(is_array($actual) && ($actual === [] || !array_is_list($actual) || (array) $expected === []),
            "$path: expected an object, found " . json_encode($actual));
        foreach ($expected as $key => $want) {
            matches($want, $actual[$key] ?? null, "$path.$key");
        }
        return;
    }
    if (is_array($expected)) {
        check(is_array($actual) && array_is_list($actual), "$path: expected a list, found " . json_encode($actual));
        same(count($expected), count($actual), "$path: number of items in " . json_encode($actual));
        foreach ($expected as $i => $want) {
            matches($want, $actual[$i], "{$path}[$i]");
        }
        return;
    }
    if (is_float($expected) || is_float($actual)) {
        check((float) $expected === (float) $actual, "$path: expected " . json_encode($expected) . ', found ' . json_encode($actual));
        return;
    }
    same($expected, $actual, $path);
}
