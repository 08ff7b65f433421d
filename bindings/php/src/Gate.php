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
 * present, presentRun, advanceClock, metrics, migrate, close.
 *
 * Arguments are checked, never coerced: ids and tokens must be ints, text
 * must be valid UTF-8 (and holds no NUL byte), documents must be JSON data.
 * Anything else is a Startgate\Exception with code invalid_request naming
 * the field, in the same words as every other surface — never a TypeError.
 *
 * The library and its declarations are found without configuration where
 * the Debian package installs them, or in a build of this repository;
 * STARTGATE_LIB and STARTGATE_HEADER override (see locate()).
 */
final class Gate
{
    private static ?\FFI $ffi = null;

    /** The types of a call's out-parameters, char* and startgate_error*, set with $ffi. */
    private static \FFI\CType $textOut;

    private static \FFI\CType $errorOut;

    /** @var \FFI\CData|null startgate_gate* */
    private ?\FFI\CData $handle;

    private function __construct(\FFI\CData $handle)
    {
        $this->handle = $handle;
    }

    /**
     * Opens a gate on $url (a SQLite path, sqlite::memory:, or a postgres://
     * URL). $registry is the path of the registry TOML file; give the TOML
     * text itself as $options['registry_toml'] instead. $options:
     * connect_timeout_ms, acquire_timeout_ms, statement_timeout_ms,
     * max_connections, schema (PostgreSQL: the schema of the gate's tables,
     * default "startgate"), manual_clock (tests), and share (default true: handles
     * with the same url, registry and options reuse one connection pool per
     * process, so a PHP-FPM worker does not reconnect on every request).
     */
    public static function open(mixed $url, mixed $registry = null, mixed $options = []): self
    {
        if (!is_array($options)) {
            throw Exception::invalid('options', 'expected an object, found ' . self::describe($options));
        }
        $document = ['url' => $url, 'registry' => $registry] + $options + ['share' => true];
        $ffi = self::ffi();
        $json = self::encode('open', $document);
        $gate = $ffi->new('startgate_gate*');
        self::call(fn ($err) => $ffi->startgate_open_json($json, \FFI::addr($gate), $err));
        $opened = new self($gate);
        // Results come as serialize() text: unserialize() reads a start's
        // result in less than half the instructions json_decode() takes for
        // its JSON (docs/DESIGN.md, section 7).
        self::call(fn ($err) => $ffi->startgate_set_result_format($gate, $ffi->STARTGATE_RESULT_PHP_SERIALIZE, $err));
        return $opened;
    }

    /** The levels a host logger may ask for, most severe first. */
    public const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'];

    /** The library's level names as PSR-3 levels. */
    private const PSR_LEVELS = [
        'error' => 'error',
        'warn' => 'warning',
        'info' => 'info',
        'debug' => 'debug',
        'trace' => 'debug',
    ];

    /** The FFI callback in place, kept alive while the library may call it. */
    private static ?\Closure $logCallback = null;

    private static bool $detachAtShutdown = false;

    /**
     * Routes the library's log records into $logger, a PSR-3 logger
     * (Psr\Log\LoggerInterface, or any object with its
     * log($level, $message, array $context) method; in Laravel the
     * service provider passes the app's log channel), for records at $level
     * ('error', 'warn', 'info', 'debug' or 'trace') and more severe. null
     * stops; then STARTGATE_LOG=info in the environment sends them to stderr.
     *
     * Each record is logged during the startgate call that produced it, in
     * this process, with a message such as "start inventory.sync: accepted"
     * and the event's fields as context: call, operation, tenant_id,
     * outcome, reason_code, run_id, duration_us, round_trips, retries, error
     * (absent where they do not apply; never params or credentials). A
     * logger that throws loses that record, never the call's result. The
     * logger is detached when the request (or script) ends.
     */
    public static function setLogger(mixed $logger, mixed $level = 'info'): void
    {
        if ($logger !== null && (!is_object($logger) || !is_callable([$logger, 'log']))) {
            throw Exception::invalid('logger', 'expected a PSR-3 logger or null, found ' . self::describe($logger));
        }
        if (!is_string($level) || !in_array($level, self::LOG_LEVELS, true)) {
            throw Exception::invalid('level', 'must be one of ' . implode(', ', self::LOG_LEVELS));
        }
        $ffi = self::ffi();
        if ($logger === null) {
            self::call(fn ($err) => $ffi->startgate_set_log_callback(null, null, null, $err));
            self::$logCallback = null;
            return;
        }
        $text = static fn ($value): string => is_string($value) ? $value : \FFI::string($value);
        $callback = static function ($userData, $recordLevel, $message, $fields) use ($logger, $text): void {
            try {
                $context = json_decode($text($fields), true, 512, JSON_THROW_ON_ERROR);
                $logger->log(self::PSR_LEVELS[$text($recordLevel)] ?? 'debug', $text($message), $context);
            } catch (\Throwable) {
                // A broken logger must not fail the start it reports on.
            }
        };
        self::call(fn ($err) => $ffi->startgate_set_log_callback($callback, null, $level, $err));
        self::$logCallback = $callback;
        if (!self::$detachAtShutdown) {
            self::$detachAtShutdown = true;
            // PHP frees FFI callbacks when the request ends: the library must
            // not keep one past that.
            register_shutdown_function(static function (): void {
                if (self::$logCallback !== null && self::$ffi !== null) {
                    self::$ffi->startgate_set_log_callback(null, null, null, null);
                    self::$logCallback = null;
                }
                self::$detachAtShutdown = false;
            });
        }
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
    public function start(mixed $request): array
    {
        return $this->json('startgate_start', self::encode('request', $request));
    }

    /** The decisions start() would make for many requests, writing nothing. */
    public function check(mixed $requests): array
    {
        $list = is_array($requests) ? array_values($requests) : $requests;
        return $this->json('startgate_check', self::encode('requests', $list));
    }

    /** Starts an ordered list of operations on one scope; later steps are pending. */
    public function startSequence(mixed $request): array
    {
        return $this->json('startgate_start_sequence', self::encode('request', $request));
    }

    /**
     * The worker took the run. An invalid_transition exception means: stop.
     * Ids and tokens must be PHP ints: a float, a numeric string or a bool is
     * refused (invalid_request), never converted.
     */
    public function markRunning(mixed $runId, mixed $fencingToken): array
    {
        return $this->method('mark_running', ['run_id' => $runId, 'fencing_token' => $fencingToken]);
    }

    /** Extends a running run's lease. */
    public function heartbeat(mixed $runId, mixed $fencingToken): array
    {
        return $this->method('heartbeat', ['run_id' => $runId, 'fencing_token' => $fencingToken]);
    }

    /**
     * Ends a run. $completion: run_id, fencing_token, outcome, and optionally
     * reason_code and summary. Returns run, notify_initiator, next (dispatch it
     * when accepted) and next_blocked.
     */
    public function complete(mixed $completion): array
    {
        return $this->json('startgate_complete', self::encode('completion', $completion));
    }

    /** Cancels a pending or active run (an operator's decision). */
    public function cancel(mixed $runId, mixed $reasonCode = null): array
    {
        return $this->method('cancel', ['run_id' => $runId, 'reason_code' => $reasonCode]);
    }

    /** Ends stale runs and admits pending sequence runs of the scopes this frees. */
    public function reapStale(): array
    {
        return $this->json('startgate_reap_stale');
    }

    public function getRun(mixed $runId): array
    {
        return $this->method('get_run', ['run_id' => $runId]);
    }

    /** $filter: tenant_id, operation, status, active, limit. */
    public function listRuns(mixed $filter = []): array
    {
        return $this->json('startgate_list_runs', $filter === [] ? null : self::encode('filter', $filter));
    }

    /** The audit rows of the start attempts that created, were refused by, or replaced a run. */
    public function attemptsForRun(mixed $runId): array
    {
        return $this->method('attempts_for_run', ['run_id' => $runId]);
    }

    /** Records a provider connection's readiness facts (never secrets). */
    public function upsertConnection(mixed $connection): array
    {
        return $this->json('startgate_upsert_connection', self::encode('connection', $connection));
    }

    public function getConnection(mixed $tenantId, mixed $id): ?array
    {
        return $this->method('get_connection', ['tenant_id' => $tenantId, 'id' => $id]);
    }

    public function listConnections(mixed $tenantId): array
    {
        return $this->method('list_connections', ['tenant_id' => $tenantId]);
    }

    /** Operator feedback for a start result: outcome, status_label, tone, title, body, run_url, actions. */
    public function present(mixed $result): array
    {
        return $this->json('startgate_present', self::encode('result', $result));
    }

    /** Run-detail wording, from the same reason catalogue. */
    public function presentRun(mixed $run): array
    {
        return $this->json('startgate_present_run', self::encode('run', $run));
    }

    /**
     * What this gate did in this process since it opened: 'starts' (operation
     * => outcome => count), 'blocked' (primary reason => count), 'takeovers',
     * 'reaped_runs', 'errors' (code => count), 'latency' (call kind =>
     * calls, p50_us, p99_us). No database access.
     *
     * @return array<string, mixed>
     */
    public function metrics(): array
    {
        return $this->method('metrics', []);
    }

    /** Moves a manual clock (opened with manual_clock) forward; tests and demos. */
    public function advanceClock(mixed $seconds): void
    {
        $this->method('advance_clock', ['seconds' => $seconds]);
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

    /**
     * Calls a method by name with named arguments, carried as one JSON
     * document: a string argument reaches the library whole (a NUL byte in
     * it is refused there, never cut off as a C string would be).
     */
    private function method(string $method, array $args): mixed
    {
        $json = self::encodeArguments($args);
        return $this->json('startgate_call', $method, $json);
    }

    /**
     * Calls a result-returning function with its arguments and decodes the
     * result. Every method but open, setLogger, migrate and close comes here,
     * so it makes the call without a closure and with the out-parameters'
     * types parsed once (see ffi()).
     */
    private function json(string $function, mixed ...$args): mixed
    {
        $ffi = self::ffi();
        $out = $ffi->new(self::$textOut);
        $error = $ffi->new(self::$errorOut);
        $args[] = \FFI::addr($out);
        $args[] = \FFI::addr($error);
        $status = $ffi->$function($this->live(), ...$args);
        if ($status !== 0) {
            self::fail($status, $error);
        }
        try {
            $text = \FFI::string($out);
        } finally {
            $ffi->startgate_string_free($out);
        }
        // The library wrote it (startgate_set_result_format in open()): no
        // objects, and the same array json_decode($json, true) would give.
        $value = unserialize($text, ['allowed_classes' => false]);
        if ($value === false && $text !== 'b:0;') {
            throw new Exception(Exception::INTERNAL, 'the library returned a result PHP cannot read', 9);
        }
        return $value;
    }

    /** Runs $call with an error out-parameter; throws on a non-zero status. */
    private static function call(callable $call): void
    {
        $ffi = self::ffi();
        $error = $ffi->new(self::$errorOut);
        $status = $call(\FFI::addr($error));
        if ($status !== 0) {
            self::fail($status, $error);
        }
    }

    /**
     * Throws the error a call with a non-zero $status left in $error (a
     * startgate_error*, NULL when the library could not allocate one), and
     * frees it.
     */
    private static function fail(int $status, \FFI\CData $error): never
    {
        $ffi = self::ffi();
        if (\FFI::isNull($error)) {
            $code = $ffi->startgate_status_code($status);
            throw new Exception($code, $code, $status);
        }
        try {
            $field = $ffi->startgate_error_field($error);
            throw new Exception(
                $ffi->startgate_error_code($error),
                $ffi->startgate_error_message($error),
                $status,
                null,
                $field,
            );
        } finally {
            $ffi->startgate_error_free($error);
        }
    }

    private const JSON_FLAGS = JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION;

    /** One argument as JSON; what JSON cannot carry is refused naming its field. */
    private static function encode(string $name, mixed $value): string
    {
        try {
            return json_encode($value, self::JSON_FLAGS);
        } catch (\JsonException) {
            throw self::unencodable($name, $value);
        }
    }

    /** Named arguments as one JSON object, each argument checked under its own name. */
    private static function encodeArguments(array $args): string
    {
        try {
            return json_encode((object) $args, self::JSON_FLAGS);
        } catch (\JsonException) {
            foreach ($args as $name => $value) {
                self::encode((string) $name, $value);
            }
            throw Exception::invalid('args', 'cannot be written as JSON');
        }
    }

    /**
     * Why $value cannot be written as JSON, as the library words it on
     * every surface: text that is not valid UTF-8 (the PHP form of what a
     * lone surrogate is elsewhere), a NaN or an infinity, a resource, or
     * nesting past json_encode's depth.
     */
    private static function unencodable(string $root, mixed $value): Exception
    {
        $stack = [['', $value, 0]];
        while ($stack !== []) {
            [$path, $item, $depth] = array_pop($stack);
            $at = $path === '' ? $root : $path;
            if (is_string($item) && preg_match('//u', $item) !== 1) {
                return Exception::invalid($at, 'must be valid Unicode text');
            }
            if (is_float($item) && !is_finite($item)) {
                return Exception::invalid($at, 'must be a finite number');
            }
            if (is_resource($item) || $item instanceof \Closure) {
                return Exception::invalid($at, 'expected JSON data, found ' . get_debug_type($item));
            }
            if (is_array($item) || $item instanceof \stdClass) {
                if ($depth >= 128) {
                    return Exception::invalid($root, 'is nested deeper than 128 levels');
                }
                $list = is_array($item) && array_is_list($item);
                foreach ((array) $item as $key => $child) {
                    if (is_string($key) && preg_match('//u', $key) !== 1) {
                        return Exception::invalid($at, 'must be valid Unicode text');
                    }
                    $inner = $list ? "{$path}[{$key}]" : ($path === '' ? (string) $key : "{$path}.{$key}");
                    $stack[] = [$inner, $child, $depth + 1];
                }
            }
        }
        return Exception::invalid($root, 'cannot be written as JSON');
    }

    private static function describe(mixed $value): string
    {
        return match (true) {
            is_null($value) => 'null',
            is_bool($value) => $value ? 'true' : 'false',
            is_string($value) => 'the string ' . json_encode($value, JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE),
            is_array($value) => 'a list',
            default => get_debug_type($value),
        };
    }

    /** The FFI scope the preloaded declarations are registered under (see preload()). */
    public const FFI_SCOPE = 'startgate';

    /**
     * Loads the library and its declarations once, in the opcache.preload
     * script of a PHP-FPM master (bindings/php/preload.php), so that every
     * worker it forks finds them as the FFI scope "startgate". That is the
     * only way to use FFI in a request under ffi.enable=preload, PHP's
     * default; it also spares each worker from parsing the declarations.
     * Finds the files as locate() does, from the master's environment.
     */
    public static function preload(): void
    {
        try {
            \FFI::scope(self::FFI_SCOPE);
            return; // ffi.preload named include/startgate_preload.h: done
        } catch (\FFI\Exception) {
        }
        [$header, $library] = self::locate();
        if (str_contains($library, '"')) {
            throw new Exception(Exception::INTERNAL, "cannot preload startgate: the library path holds a quote ($library)");
        }
        // FFI::load() reads the scope and library from the file itself.
        $scoped = tempnam(sys_get_temp_dir(), 'startgate-ffi-');
        if ($scoped === false) {
            throw new Exception(Exception::INTERNAL, 'cannot preload startgate: no temporary file for its declarations');
        }
        try {
            $declarations = sprintf("#define FFI_SCOPE \"%s\"\n#define FFI_LIB \"%s\"\n", self::FFI_SCOPE, $library)
                . (string) file_get_contents($header);
            if (file_put_contents($scoped, $declarations) === false) {
                throw new Exception(Exception::INTERNAL, "cannot preload startgate: cannot write $scoped");
            }
            try {
                $loaded = \FFI::load($scoped);
            } catch (\FFI\Exception $e) {
                throw new Exception(Exception::INTERNAL, "cannot preload startgate from $library: {$e->getMessage()}", 9, $e);
            }
            if ($loaded === null) {
                throw new Exception(Exception::INTERNAL, "cannot preload startgate from $library (see the PHP warning before this)");
            }
        } finally {
            @unlink($scoped);
        }
    }

    private static function ffi(): \FFI
    {
        if (self::$ffi === null) {
            try {
                $ffi = \FFI::scope(self::FFI_SCOPE);
            } catch (\FFI\Exception) {
                $ffi = self::declare();
            }
            // FFI::new() with a type name parses it on every call.
            self::$textOut = $ffi->type('char*');
            self::$errorOut = $ffi->type('startgate_error*');
            self::$ffi = $ffi;
        }
        return self::$ffi;
    }

    /** The declarations parsed in this process: the CLI, or ffi.enable=true. */
    private static function declare(): \FFI
    {
        [$header, $library] = self::locate();
        try {
            return \FFI::cdef((string) file_get_contents($header), $library);
        } catch (\FFI\Exception $e) {
            $hint = ini_get('ffi.enable') === 'preload' && PHP_SAPI !== 'cli'
                ? ': under ffi.enable=preload, load it in the opcache.preload script (require vendor/startgate/startgate/preload.php)'
                : '';
            throw new Exception(Exception::INTERNAL, "cannot load startgate from $library{$hint} ({$e->getMessage()})", 9, $e);
        }
    }

    /**
     * The declarations and the library: STARTGATE_HEADER / STARTGATE_LIB
     * when set; else a build of this repository (STARTGATE_BUILD_DIR, then
     * target/release and target/debug); else the system's, as the Debian
     * package installs them (/usr/include/startgate_php.h and
     * libstartgate.so.0 in the library path).
     *
     * @return array{string, string}
     */
    private static function locate(): array
    {
        $root = dirname(__DIR__, 3);
        $header = getenv('STARTGATE_HEADER') ?: null;
        if ($header === null) {
            foreach (["$root/include/startgate_php.h", '/usr/include/startgate_php.h', '/usr/local/include/startgate_php.h'] as $candidate) {
                if (is_file($candidate)) {
                    $header = $candidate;
                    break;
                }
            }
        }
        $library = getenv('STARTGATE_LIB') ?: null;
        if ($library === null) {
            $candidates = [];
            $buildDir = getenv('STARTGATE_BUILD_DIR');
            if ($buildDir !== false) {
                $candidates[] = "$buildDir/libstartgate.so";
            }
            foreach (['release', 'debug'] as $profile) {
                $candidates[] = (getenv('CARGO_TARGET_DIR') ?: $root . '/target') . "/$profile/libstartgate.so";
            }
            $multiarch = php_uname('m') . '-linux-gnu';
            array_push($candidates, "/usr/lib/$multiarch/libstartgate.so.0", '/usr/lib/libstartgate.so.0', '/usr/local/lib/libstartgate.so.0');
            foreach ($candidates as $candidate) {
                if (is_file($candidate)) {
                    $library = $candidate;
                    break;
                }
            }
        }
        if ($library === null || $header === null || !is_file($header)) {
            throw new Exception(Exception::INTERNAL, 'cannot find libstartgate (install the startgate package, or set STARTGATE_LIB) or its header startgate_php.h (STARTGATE_HEADER)');
        }
        return [$header, $library];
    }
}
