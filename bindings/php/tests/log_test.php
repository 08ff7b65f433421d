<?php
// Gate::setLogger: the library's records reach a PSR-3 logger during the call
// that produced them, with the tracing fields as context and never params;
// bad arguments are refused like every other input.

declare(strict_types=1);

use Startgate\Gate;

require_once '/usr/share/php/Psr/Log/autoload.php';

/** A PSR-3 logger that keeps what it is given. */
final class MemoryLogger extends \Psr\Log\AbstractLogger
{
    /** @var list<array{string, string, array<string, mixed>}> */
    public array $records = [];

    public function log($level, $message, array $context = []): void
    {
        $this->records[] = [(string) $level, (string) $message, $context];
    }

    /** @return list<array{string, string, array<string, mixed>}> */
    public function matching(string $message): array
    {
        return array_values(array_filter($this->records, static fn ($r) => $r[1] === $message));
    }
}

/** A logger that always throws: the call it reports on must not notice. */
final class BrokenLogger extends \Psr\Log\AbstractLogger
{
    public int $calls = 0;

    public function log($level, $message, array $context = []): void
    {
        $this->calls++;
        throw new \RuntimeException('disk full');
    }
}

function loggedStarts(string $url): void
{
    $secret = 'param-secret-php-41c9';
    $logger = new MemoryLogger();
    $gate = Gate::open($url, registryPath(), ['share' => false]);
    $gate->migrate();
    $gate->upsertConnection(readyConnection());
    Gate::setLogger($logger, 'info');
    try {
        $request = ['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice(), 'params' => ['note' => $secret]];
        $accepted = $gate->start($request);
        // Delivered before start() returned.
        $records = $logger->matching('start inventory.sync: accepted');
        same(1, count($records), 'one accepted record');
        [$level, , $context] = $records[0];
        same('info', $level, 'PSR-3 level');
        same(
            ['start', 'inventory.sync', 'contoso', 'accepted', $accepted['run']['id'], 0],
            [$context['call'], $context['operation'], $context['tenant_id'], $context['outcome'], $context['run_id'], $context['retries']],
            'context fields',
        );
        check(is_int($context['duration_us']) && $context['round_trips'] >= 1, 'duration and round trips');

        $request['params'] = ['note' => $secret . '-other'];
        $gate->start($request);
        [, , $deduped] = $logger->matching('start inventory.sync: deduped')[0];
        same([true, $accepted['run']['id']], [$deduped['params_differ'], $deduped['run_id']], 'deduped fields');

        throwsCode('invalid_request', fn () => $gate->start(['tenant_id' => ''] + $request));
        $warnings = array_values(array_filter($logger->records, static fn ($r) => $r[0] === 'warning'));
        same(1, count($warnings), 'a failed call is one warning');
        same('invalid_request', $warnings[0][2]['error'], 'its code');

        $upserts = array_filter($logger->records, static fn ($r) => ($r[2]['call'] ?? '') === 'upsert_connection');
        same(0, count($upserts), 'debug records stay out at info');
        foreach ($logger->records as [$lvl, $message, $ctx]) {
            check(!str_contains($message . json_encode($ctx), $secret), "params leaked: $message");
        }

        // A logger that throws loses its records, not the call's result.
        $broken = new BrokenLogger();
        Gate::setLogger($broken, 'debug');
        same('deduped', $gate->start($request)['outcome'], 'start with a broken logger');
        check($broken->calls >= 1, 'the broken logger was called');

        // null detaches: nothing more arrives.
        Gate::setLogger(null);
        $seen = $broken->calls;
        $gate->start($request);
        same($seen, $broken->calls, 'nothing after detaching');
    } finally {
        Gate::setLogger(null);
        $gate->close();
    }
}

test('setLogger routes records into a PSR-3 logger (SQLite)', fn () => loggedStarts(sqliteUrl('log')));
test('setLogger routes records into a PSR-3 logger (PostgreSQL)', fn () => loggedStarts(postgresUrl('log')));

test('setLogger refuses what is not a logger or a level', function (): void {
    $e = throwsCode('invalid_request', fn () => Gate::setLogger(new \stdClass()));
    same('logger', $e->getField(), 'field');
    foreach (['INFO', 'warning', "info\0", 3, null] as $level) {
        $e = throwsCode('invalid_request', fn () => Gate::setLogger(new MemoryLogger(), $level));
        same('level', $e->getField(), 'field');
        same('invalid request: level: must be one of error, warn, info, debug, trace', $e->getMessage(), 'message');
    }
});
