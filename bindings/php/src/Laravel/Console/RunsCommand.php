<?php

declare(strict_types=1);

namespace Startgate\Laravel\Console;

use Startgate\Gate;

/** `startgate:runs`: the latest runs, filtered as `startgate runs` filters them. */
final class RunsCommand extends GateCommand
{
    protected $signature = 'startgate:runs
        {--tenant= : only this tenant}
        {--operation= : only this operation}
        {--status= : pending, queued, running, succeeded, failed, cancelled or blocked}
        {--active : only queued and running runs}
        {--limit=50 : at most this many}
        {--json : print the runs as JSON}';

    protected $description = 'List runs, newest first';

    protected function perform(Gate $gate): int
    {
        $filter = ['limit' => $this->wholeNumber('limit', $this->option('limit'))];
        foreach (['tenant' => 'tenant_id', 'operation' => 'operation', 'status' => 'status'] as $option => $key) {
            if ($this->option($option) !== null) {
                $filter[$key] = $this->option($option);
            }
        }
        if ($this->option('active')) {
            $filter['active'] = true;
        }
        $runs = $gate->listRuns($filter);
        if ($this->option('json')) {
            return $this->printJson($runs);
        }
        if ($runs === []) {
            $this->line('no runs match');
            return self::SUCCESS;
        }
        $this->table(
            ['ID', 'OPERATION', 'TENANT', 'CONNECTION', 'STATUS', 'SINCE', 'BY', 'REASON'],
            array_map(static fn (array $run): array => [
                $run['id'],
                $run['operation'],
                $run['tenant_id'],
                $run['provider_connection_id'] ?? '—',
                $run['status'],
                $run['since'],
                "{$run['actor_id']} ({$run['initiator']})",
                $run['reason_code'] ?? '',
            ], $runs),
        );
        return self::SUCCESS;
    }
}
