<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Startgate\Exception;
use Startgate\Gate;

/**
 * Turns config/startgate.php (and the application's config/database.php) into
 * an open Gate. Values from the environment arrive as text: numbers are read
 * strictly ("20" is 20; "20ms", "2.5" and "" are refused naming their key),
 * never coerced.
 */
final class GateConfig
{
    /** The options passed through to Gate::open(), by their config keys. */
    private const TIMEOUTS = ['max_connections', 'connect_timeout_ms', 'acquire_timeout_ms', 'statement_timeout_ms'];

    /**
     * Opens the gate $config describes. $connections and $default are
     * config('database.connections') and config('database.default').
     */
    public static function open(array $config, array $connections, ?string $default): Gate
    {
        return Gate::open(self::url($config, $connections, $default), $config['registry'] ?? null, self::options($config));
    }

    /**
     * The database URL: `url` when set, else the Laravel connection named by
     * `connection` (default: the application's default connection).
     */
    public static function url(array $config, array $connections, ?string $default): string
    {
        $url = $config['url'] ?? null;
        if ($url === null || $url === '') {
            $name = $config['connection'] ?? null;
            $name = ($name === null || $name === '') ? $default : $name;
            if (!is_string($name) || !is_array($connections[$name] ?? null)) {
                throw Exception::invalid('connection', sprintf('no database connection named %s in config/database.php', json_encode($name)));
            }
            $url = self::urlOf($name, $connections[$name]);
        }
        if (!is_string($url)) {
            throw Exception::invalid('url', 'expected text, found ' . get_debug_type($url));
        }
        $name = $config['application_name'] ?? null;
        if (is_string($name) && $name !== '' && str_starts_with($url, 'postgres') && !preg_match('/[?&]application_name=/', $url)) {
            $url .= (str_contains($url, '?') ? '&' : '?') . 'application_name=' . rawurlencode($name);
        }
        return $url;
    }

    /** The options of Gate::open() that $config sets. */
    public static function options(array $config): array
    {
        $options = ['share' => true];
        foreach (self::TIMEOUTS as $key) {
            if (isset($config[$key]) && $config[$key] !== '') {
                $options[$key] = self::whole($key, $config[$key]);
            }
        }
        foreach (['schema', 'manual_clock'] as $key) {
            if (isset($config[$key])) {
                $options[$key] = $config[$key];
            }
        }
        return $options;
    }

    /** A whole number from config: an int, or text of decimal digits. */
    private static function whole(string $key, mixed $value): mixed
    {
        if (is_string($value) && preg_match('/^[0-9]{1,18}$/', $value) === 1) {
            return (int) $value;
        }
        // Anything else goes to the library as it is, to be refused there in
        // the words every surface uses (or accepted, if it is an int).
        return $value;
    }

    /** The URL of one Laravel database connection (pgsql or sqlite). */
    private static function urlOf(string $name, array $c): string
    {
        if (isset($c['write']) && is_array($c['write'])) {
            $c = array_merge($c, $c['write']); // the gate writes
        }
        $driver = $c['driver'] ?? null;
        if (isset($c['url']) && is_string($c['url']) && $c['url'] !== '') {
            return preg_replace('#^(pgsql|postgresql)://#', 'postgres://', $c['url']) ?? $c['url'];
        }
        if ($driver === 'sqlite') {
            $database = (string) ($c['database'] ?? '');
            return $database === ':memory:' ? 'sqlite::memory:' : $database;
        }
        if ($driver !== 'pgsql') {
            throw Exception::invalid('connection', sprintf(
                'the database connection "%s" uses the %s driver; startgate runs on pgsql or sqlite (or set startgate.url)',
                $name,
                is_string($driver) ? $driver : get_debug_type($driver),
            ));
        }
        $host = $c['host'] ?? '127.0.0.1';
        $host = is_array($host) ? (string) reset($host) : (string) $host;
        $query = ['sslmode' => $c['sslmode'] ?? 'prefer'];
        foreach (['sslrootcert', 'sslcert', 'sslkey'] as $key) {
            if (!empty($c[$key])) {
                $query[$key] = $c[$key];
            }
        }
        if (str_starts_with($host, '/')) {
            $query['host'] = $host; // a Unix socket directory
            $host = 'localhost';
        } elseif (str_contains($host, ':')) {
            $host = "[$host]"; // IPv6
        }
        $port = (string) ($c['port'] ?? '5432');
        if (preg_match('/^[0-9]{1,5}$/', $port) !== 1) {
            throw Exception::invalid('connection', sprintf('the database connection "%s" has port %s, not a port number', $name, json_encode($c['port'])));
        }
        $user = rawurlencode((string) ($c['username'] ?? ''));
        $password = (string) ($c['password'] ?? '');
        $credentials = $user === '' ? '' : $user . ($password === '' ? '' : ':' . rawurlencode($password)) . '@';
        return sprintf(
            'postgres://%s%s:%s/%s?%s',
            $credentials,
            $host,
            $port,
            rawurlencode((string) ($c['database'] ?? '')),
            http_build_query($query, '', '&', PHP_QUERY_RFC3986),
        );
    }
}
