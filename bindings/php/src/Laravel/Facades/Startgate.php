<?php

declare(strict_types=1);

namespace Startgate\Laravel\Facades;

use Illuminate\Support\Facades\Facade;
use Startgate\Gate;

/**
 * The application's shared Startgate\Gate.
 *
 * @method static array start(array $request)
 * @method static array check(array $requests)
 * @method static array startSequence(array $request)
 * @method static array markRunning(int $runId, int $fencingToken)
 * @method static array heartbeat(int $runId, int $fencingToken)
 * @method static array complete(array $completion)
 * @method static array cancel(int $runId, ?string $reasonCode = null)
 * @method static array reapStale()
 * @method static array getRun(int $runId)
 * @method static array listRuns(array $filter = [])
 * @method static array attemptsForRun(int $runId)
 * @method static array upsertConnection(array $connection)
 * @method static array|null getConnection(string $tenantId, string $id)
 * @method static array listConnections(string $tenantId)
 * @method static array present(array $result)
 * @method static array presentRun(array $run)
 * @method static void migrate()
 *
 * @see \Startgate\Gate
 */
final class Startgate extends Facade
{
    protected static function getFacadeAccessor(): string
    {
        return Gate::class;
    }
}
