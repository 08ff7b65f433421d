<?php

declare(strict_types=1);

namespace Startgate\Laravel;

/**
 * A gated job's run ended (succeeded or failed), fired after the job
 * middleware completed it. Listen for it to notify the initiator when
 * `$completion['notify_initiator']` is true; Feedback::ofRun() words it.
 */
final class RunFinished
{
    /**
     * @param array<string, mixed> $completion the result of complete(): run,
     *        notify_initiator, next, next_blocked
     */
    public function __construct(public readonly array $completion)
    {
    }
}
