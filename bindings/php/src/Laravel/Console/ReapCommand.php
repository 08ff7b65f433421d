<?php

declare(strict_types=1);

namespace Startgate\Laravel\Console;

use Startgate\Gate;
use Startgate\Laravel\RunDispatcher;

/**
 * `startgate:reap`: ends stale runs (a worker died or never picked the run
 * up) and dispatches the pending sequence runs that freed scopes admitted.
 * The service provider schedules it every minute.
 */
final class ReapCommand extends GateCommand
{
    protected $signature = 'startgate:reap {--json : print the result as JSON}';

    protected $description = 'End stale runs and dispatch the pending sequence runs this admits';

    protected function perform(Gate $gate): int
    {
        $result = $gate->reapStale();
        $dispatcher = $this->laravel->make(RunDispatcher::class);
        $dispatched = 0;
        foreach ($result['next'] as $next) {
            $dispatched += $dispatcher->dispatch($next) ? 1 : 0;
        }
        if ($this->option('json')) {
            return $this->printJson($result + ['dispatched' => $dispatched]);
        }
        $this->line(sprintf('reaped %d stale run(s)', count($result['reaped'])));
        foreach ($result['reaped'] as $run) {
            $this->line(sprintf('  run %d %s on (%s, %s) → failed (%s)', $run['id'], $run['operation'], $run['tenant_id'], $run['provider_connection_id'] ?? '', $run['reason_code'] ?? ''));
        }
        foreach ($result['next'] as $next) {
            if (is_array($next['run'] ?? null)) {
                $this->line(sprintf('  pending run %d %s → %s', $next['run']['id'], $next['run']['operation'], $next['outcome']));
            }
        }
        if ($dispatched > 0) {
            $this->line(sprintf('dispatched %d admitted run(s)', $dispatched));
        }
        return self::SUCCESS;
    }
}
