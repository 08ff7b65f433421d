<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Illuminate\Contracts\Bus\Dispatcher;
use Illuminate\Contracts\Config\Repository;
use Psr\Log\LoggerInterface;

/**
 * Dispatches an accepted run to the job class config('startgate.jobs') names
 * for its operation: the next step of a sequence when one ends (the job
 * middleware), and pending runs a reap admitted (`startgate:reap`).
 */
final class RunDispatcher
{
    public function __construct(
        private Repository $config,
        private Dispatcher $bus,
        private LoggerInterface $log,
    ) {
    }

    /**
     * Dispatches $result's run when it was accepted; returns whether it was.
     * A run whose operation has no job class is left queued (the reaper ends
     * it after its dispatch timeout) and logged as an error.
     */
    public function dispatch(array $result): bool
    {
        if (($result['outcome'] ?? null) !== 'accepted' || !is_array($result['run'] ?? null)) {
            return false;
        }
        $operation = $result['run']['operation'];
        $class = ((array) $this->config->get('startgate.jobs', []))[$operation] ?? null;
        if (!is_string($class) || !class_exists($class)) {
            $this->log->error("startgate: run {$result['run']['id']} ({$operation}) was admitted, but config('startgate.jobs') names no job class for {$operation}; it stays queued until its dispatch timeout");
            return false;
        }
        $this->bus->dispatch(new $class($result));
        return true;
    }
}
