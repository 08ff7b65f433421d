<?php

declare(strict_types=1);

namespace Startgate\Laravel\Console;

use Startgate\Gate;

/** `startgate:migrate`: creates or updates the gate's tables, in their own schema. */
final class MigrateCommand extends GateCommand
{
    protected $signature = 'startgate:migrate';

    protected $description = "Create or update startgate's tables (in their own schema; nothing else is touched)";

    protected function perform(Gate $gate): int
    {
        $gate->migrate();
        $this->info(sprintf('startgate: the schema "%s" is up to date', $this->laravel['config']->get('startgate.schema', 'startgate')));
        return self::SUCCESS;
    }
}
