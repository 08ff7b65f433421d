<?php
// A small test runner (no PHPUnit needed): register tests with test(), run
// them with run(). It prints a dot per test and PHPUnit's closing line.

declare(strict_types=1);

require_once dirname(__DIR__) . '/startgate.php';

final class AssertionFailed extends \Exception
{
}

final class Harness
{
    /** @var array<string, callable> */
    public static array $tests = [];
    public static int $assertions = 0;

    public static function run(): int
    {
        $failures = [];
        $started = microtime(true);
        foreach (self::$tests as $name => $test) {
            try {
                $test();
                echo '.';
            } catch (\Throwable $e) {
                echo 'F';
                $failures[] = [$name, $e];
            }
        }
        printf("\n\nTime: %.2f s\n\n", microtime(true) - $started);
        foreach ($failures as $i => [$name, $e]) {
            printf("%d) %s\n%s: %s\n%s\n\n", $i + 1, $name, get_class($e), $e->getMessage(), $e->getTraceAsString());
        }
        $tests = count(self::$tests);
        if ($failures === []) {
            printf("OK (%d tests, %d assertions)\n", $tests, self::$assertions);
            return 0;
        }
        printf("FAILURES!\nTests: %d, Assertions: %d, Failures: %d.\n", $tests, self::$assertions, count($failures));
        return 1;
    }
}

function test(string $name, callable $body): void
{
    Harness::$tests[$name] = $body;
}

function check(bool $condition, string $what): void
{
    Harness::$assertions++;
    if (!$condition) {
        throw new AssertionFailed($what);
    }
}

function same(mixed $expected, mixed $actual, string $what = ''): void
{
    check($expected === $actual, sprintf('%s: expected %s, got %s', $what, var_export($expected, true), var_export($actual, true)));
}

/** Runs $body, which must throw Startgate\Exception with $code (and $needle in the message). */
function throwsCode(string $code, callable $body, ?string $needle = null): \Startgate\Exception
{
    try {
        $body();
    } catch (\Startgate\Exception $e) {
        same($code, $e->getErrorCode(), 'error code (' . $e->getMessage() . ')');
        if ($needle !== null) {
            check(str_contains($e->getMessage(), $needle), "message \"{$e->getMessage()}\" mentions \"$needle\"");
        }
        return $e;
    }
    throw new AssertionFailed("expected a Startgate\\Exception with code $code, nothing was thrown");
}

function repo(string $path = ''): string
{
    return dirname(__DIR__, 3) . ($path === '' ? '' : '/' . $path);
}

function registryPath(): string
{
    return repo('tests/conformance/registry.toml');
}

/** A fresh SQLite URL (the file is removed at exit). */
function sqliteUrl(string $tag): string
{
    $path = sys_get_temp_dir() . "/startgate-php-$tag-" . getmypid() . '-' . bin2hex(random_bytes(4)) . '.db';
    $owner = getmypid();
    register_shutdown_function(static function () use ($path, $owner): void {
        if (getmypid() !== $owner) {
            return; // a forked child: the parent cleans up
        }
        foreach (['', '-wal', '-shm'] as $suffix) {
            @unlink($path . $suffix);
        }
    });
    return "sqlite://$path";
}

function adminUrl(): string
{
    return getenv('STARTGATE_TEST_POSTGRES') ?: 'postgres://postgres@127.0.0.1:5432/postgres';
}

function psql(string $sql, ?string $database = null): void
{
    $url = adminUrl();
    if ($database !== null) {
        $url = substr($url, 0, strrpos($url, '/') + 1) . $database;
    }
    exec('psql -q -v ON_ERROR_STOP=1 ' . escapeshellarg($url) . ' -c ' . escapeshellarg($sql) . ' 2>&1', $output, $status);
    check($status === 0, "psql $sql: " . implode("\n", $output));
}

/** A fresh PostgreSQL database (dropped at exit); returns its URL. */
function postgresUrl(string $tag): string
{
    static $started = false;
    if (!$started) {
        exec(escapeshellarg(repo('scripts/postgres-up')), $output, $status);
        check($status === 0, 'scripts/postgres-up');
        $started = true;
    }
    $name = "startgate_test_php_{$tag}_" . getmypid() . '_' . bin2hex(random_bytes(3));
    psql("CREATE DATABASE $name");
    $owner = getmypid();
    register_shutdown_function(static function () use ($name, $owner): void {
        if (getmypid() !== $owner) {
            return; // a forked child: the parent cleans up
        }
        exec('psql -q ' . escapeshellarg(adminUrl()) . ' -c ' . escapeshellarg("DROP DATABASE IF EXISTS $name WITH (FORCE)") . ' 2>&1');
    });
    $admin = adminUrl();
    return substr($admin, 0, strrpos($admin, '/') + 1) . $name;
}

function alice(array $capabilities = ['inventory.sync', 'restore.execute', 'tenant.manage', 'provider.manage', 'compliance.read']): array
{
    return ['id' => 'alice', 'is_member' => true, 'capabilities' => $capabilities];
}

function readyConnection(string $tenant = 'contoso', string $id = 'graph', array $overrides = []): array
{
    return $overrides + [
        'tenant_id' => $tenant,
        'id' => $id,
        'provider' => 'microsoft_graph',
        'display_name' => 'Microsoft Graph',
        'is_default' => true,
        'consent' => 'granted',
        'credential' => 'present',
        'health' => 'ok',
    ];
}
