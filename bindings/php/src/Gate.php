<?php

declare(strict_types=1);

namespace Startgate;

/**
 * The one start path for provider-backed operations, over the startgate C ABI
 * with PHP's FFI. Every method takes and returns plain PHP arrays in the shapes
 * of the contract (snake_case keys, as in the JSON documents); failures throw
 * Startgate\Exception with the stable code in getErrorCode().
 *
 * Method names are the contract's, camelCased as PHP does: start, check,
 * startSequence, markRunning, heartbeat, complete, cancel, reapStale, getRun,
 * listRuns, attemptsForRun, upsertConnection, getConnection, listConnections,
 * present, presentRun, advanceClock, migrate, close.
 *
 * The library is found through STARTGATE_LIB (a path to libstartgate.so), or
 * in STARTGATE_BUILD_DIR, or target/release then target/debug of this
 * repository; the declarations come
 * from include/startgate_php.h (or STARTGATE_HEADER).
 */
final class Gate
{
    private static ?\FFI $ffi = null;

    /** @var \FFI\CData|null startgate_gate* */
    private ?\FFI\CData $handle;

    private function __construct(\FFI\CData $handle)
    {
        $this->handle = $handle;
    }

    /**
     * Opens a gate. $registry is the registry TOML text, or a path to a TOML
     * file. $options: connect_timeout_ms, acquire_timeout_ms,
     * statement_timeout_ms, max_connections, manual_clock (tests), and share
     * (default true: handles with the same url, registry and options reuse one
     * connection pool per process, so a PHP-FPM worker does not reconnect on
     * every request).
     */
    public static function open(string $url, string $registry, array $options = []): self
    {
        $ffi = self::ffi();
        $options += ['share' => true];
        $json = self::encode($options);
        $gate = $ffi->new('startgate_gate*');
        $isFile = !str_contains($registry, "\n") && is_file($registry);
        self::call(fn ($err) => $isFile
            ? $ffi->startgate_open_file($url, $registry, $json, \FFI::addr($gate), $err)
            : $ffi->startgate_open($url, $registry, $json, \FFI::addr($gate), $err));
        return new self($gate);
    }

    /** The library's version, e.g. "0.1.0". */
    public static function version(): string
    {
        // A `const char *` result arrives as a PHP string.
        return self::ffi()->startgate_version();
    }

    /** Applies the schema migrations (idempotent; run it against PostgreSQL directly). */
    public function migrate(): void
    {
        $ffi = self::ffi();
        self::call(fn ($err) => $ffi->startgate_migrate($this->live(), $err));
    }

    /**
     * Starts an operation. $request: operation, tenant_id, actor (id,
     * is_member, capabilities), and optionally provider_connection_id,
     * subject, params, initiator, tenant_active. Returns the start result:
     * outcome accepted / deduped / scope_busy / blocked / denied.
     */
    public function start(array $request): array
    {
        return $this->json('startgate_start', self::encode($request));
    }

    /** The decisions start() would make for many requests, writing nothing. */
    public function check(array $requests): array
    {
        return $this->json('startgate_check', self::encode(array_values($requests)));
    }

    /** Starts an ordered list of operations on one scope; later steps are pending. */
    public function startSequence(array $request): array
    {
        return $this->json('startgate_start_sequence', self::encode($request));
    }

    /** The worker took the run. An invalid_transition exception means: stop. */
    public function markRunning(int $runId, int $fencingToken): array
    {
        return $this->json('startgate_mark_running', $runId, $fencingToken);
    }

    /** Extends a running run's lease. */
    public function heartbeat(int $runId, int $fencingToken): array
    {
        return $this->json('startgate_heartbeat', $runId, $fencingToken);
    }

    /**
     * Ends a run. $completion: run_id, fencing_token, outcome, and optionally
     * reason_code and summary. Returns run, notify_initiator, next (dispatch it
     * when accepted) and next_blocked.
     */
    public function complete(array $completion): array
    {
        return $this->json('startgate_complete', self::encode($completion));
    }

    /** Cancels a pending or active run (an operator's decision). */
    public function cancel(int $runId, ?string $reasonCode = null): array
    {
        return $this->json('startgate_cancel', $runId, $reasonCode);
    }

    /** Ends stale runs and admits pending sequence runs of the scopes this frees. */
    public function reapStale(): array
    {
        return $this->json('startgate_reap_stale');
    }

    public function getRun(int $runId): array
    {
        return $this->json('startgate_get_run', $runId);
    }

    /** $filter: tenant_id, operation, status, active, limit. */
    public function listRuns(array $filter = []): array
    {
        return $this->json('startgate_list_runs', $filter === [] ? null : self::encode($filter));
    }

    /** The audit rows of the start attempts that created, were refused by, or replaced a run. */
    public function attemptsForRun(int $runId): array
    {
        return $this->json('startgate_attempts_for_run', $runId);
    }

    /** Records a provider connection's readiness facts (never secrets). */
    public function upsertConnection(array $connection): array
    {
        return $this->json('startgate_upsert_connection', self::encode($connection));
    }

    public function getConnection(string $tenantId, string $id): ?array
    {
        return $this->json('startgate_get_connection', $tenantId, $id);
    }

    public function listConnections(string $tenantId): array
    {
        return $this->json('startgate_list_connections', $tenantId);
    }

    /** Operator feedback for a start result: outcome, status_label, tone, title, body, run_url, actions. */
    public function present(array $result): array
    {
        return $this->json('startgate_present', self::encode($result));
    }

    /** Run-detail wording, from the same reason catalogue. */
    public function presentRun(array $run): array
    {
        return $this->json('startgate_present_run', self::encode($run));
    }

    /** Moves a manual clock (opened with manual_clock) forward; tests and demos. */
    public function advanceClock(float $seconds): void
    {
        $ffi = self::ffi();
        self::call(fn ($err) => $ffi->startgate_advance_clock($this->live(), $seconds, $err));
    }

    /** Closes the gate; later calls throw store_unavailable. */
    public function close(): void
    {
        if ($this->handle !== null) {
            $ffi = self::ffi();
            self::call(fn ($err) => $ffi->startgate_close($this->handle, $err));
        }
    }

    public function __destruct()
    {
        if ($this->handle !== null && self::$ffi !== null) {
            self::$ffi->startgate_free($this->handle);
            $this->handle = null;
        }
    }

    private function live(): \FFI\CData
    {
        if ($this->handle === null) {
            throw new Exception(Exception::STORE_UNAVAILABLE, 'store unavailable: the gate was released');
        }
        return $this->handle;
    }

    /** Calls a JSON-returning function with its arguments and decodes the result. */
    private function json(string $function, mixed ...$args): mixed
    {
        $ffi = self::ffi();
        $out = $ffi->new('char*');
        $handle = $this->live();
        self::call(fn ($err) => $ffi->$function($handle, ...[...$args, \FFI::addr($out), $err]));
        try {
            return json_decode(\FFI::string($out), true, 512, JSON_THROW_ON_ERROR);
        } finally {
            $ffi->startgate_string_free($out);
        }
    }

    /** Runs $call with an error out-parameter; throws on a non-zero status. */
    private static function call(callable $call): void
    {
        $ffi = self::ffi();
        $error = $ffi->new('startgate_error*');
        $status = $call(\FFI::addr($error));
        if ($status === 0) {
            return;
        }
        if (\FFI::isNull($error)) {
            $code = $ffi->startgate_status_code($status);
            throw new Exception($code, $code, $status);
        }
        try {
            throw new Exception(
                $ffi->startgate_error_code($error),
                $ffi->startgate_error_message($error),
                $status,
            );
        } finally {
            $ffi->startgate_error_free($error);
        }
    }

    private static function encode(mixed $value): string
    {
        try {
            return json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
        } catch (\JsonException $e) {
            throw new Exception(Exception::INVALID_REQUEST, 'invalid request: cannot encode as JSON: ' . $e->getMessage(), 1, $e);
        }
    }

    private static function ffi(): \FFI
    {
        if (self::$ffi === null) {
            $root = dirname(__DIR__, 3);
            $header = getenv('STARTGATE_HEADER') ?: $root . '/include/startgate_php.h';
            $library = getenv('STARTGATE_LIB') ?: null;
            $buildDir = getenv('STARTGATE_BUILD_DIR');
            if ($library === null && $buildDir !== false && is_file("$buildDir/libstartgate.so")) {
                $library = "$buildDir/libstartgate.so";
            }
            if ($library === null) {
                foreach (['release', 'debug'] as $profile) {
                    $candidate = (getenv('CARGO_TARGET_DIR') ?: $root . '/target') . "/$profile/libstartgate.so";
                    if (is_file($candidate)) {
                        $library = $candidate;
                        break;
                    }
                }
            }
            if ($library === null || !is_file($header)) {
                throw new Exception(Exception::INTERNAL, 'cannot find libstartgate.so (set STARTGATE_LIB) or its header (STARTGATE_HEADER)');
            }
            self::$ffi = \FFI::cdef((string) file_get_contents($header), $library);
        }
        return self::$ffi;
    }
}
