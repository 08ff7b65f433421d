<?php

// startgate's configuration (publish it with
// `php artisan vendor:publish --tag=startgate-config`).

return [

    // The database the gate admits runs in. By default the application's own
    // connection (its tables live in their own schema, below); name another
    // connection of config/database.php, or give a URL, which wins:
    // postgres://user:password@host:5432/app?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem
    'connection' => env('STARTGATE_DB_CONNECTION'),
    'url' => env('STARTGATE_DATABASE_URL'),

    // PostgreSQL: the schema of the gate's tables; nothing else is touched.
    'schema' => env('STARTGATE_SCHEMA', 'startgate'),

    // The registry of operations, sequences and reasons (TOML).
    'registry' => env('STARTGATE_REGISTRY', base_path('startgate.toml')),

    // Connections per process (each PHP-FPM worker and queue worker has its
    // own pool, shared by every request it serves), and the timeouts.
    // Whole numbers; text from the environment must be digits only.
    'max_connections' => env('STARTGATE_MAX_CONNECTIONS', 2),
    'connect_timeout_ms' => env('STARTGATE_CONNECT_TIMEOUT_MS', 5000),
    'acquire_timeout_ms' => env('STARTGATE_ACQUIRE_TIMEOUT_MS', 5000),
    'statement_timeout_ms' => env('STARTGATE_STATEMENT_TIMEOUT_MS', 5000),

    // How the gate's sessions are named in pg_stat_activity (PostgreSQL).
    'application_name' => env('STARTGATE_APPLICATION_NAME', 'startgate'),

    // The gate's log records (each start's decision, each step of a run;
    // never params or credentials) go to this channel of config/logging.php
    // — null: the default channel, false: not logged — from this level up:
    // error, warn, info, debug or trace.
    'log_channel' => env('STARTGATE_LOG_CHANNEL'),
    'log_level' => env('STARTGATE_LOG_LEVEL', 'info'),

    // The job class that runs each operation, for the job middleware to
    // dispatch the next run of a sequence (onboarding) when a step ends.
    'jobs' => [
        // 'tenant.verify' => App\Jobs\VerifyTenant::class,
        // 'inventory.sync' => App\Jobs\SyncInventory::class,
    ],

    // Register `startgate:reap` on the scheduler, every minute.
    'schedule_reap' => true,

];
