<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Startgate\Exception;

/**
 * The run a gated job was working for is no longer its own: reaped, taken
 * over by a later start, or cancelled (the gate said invalid_transition).
 * Thrown by GatedRun::heartbeat(); RunThroughGate ends the job without
 * completing or retrying it.
 */
final class RunLost extends \RuntimeException
{
    public function __construct(public readonly int $runId, Exception $previous)
    {
        parent::__construct("startgate: run {$runId} is no longer this job's ({$previous->getMessage()})", 0, $previous);
    }
}
