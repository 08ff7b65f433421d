<?php

declare(strict_types=1);

namespace Startgate\Laravel;

/**
 * A gated job reached its work without a run the gate admitted and marked
 * running: it was dispatched without the accepted start result, or handle()
 * was called around RunThroughGate. The job does no provider work.
 */
final class UngatedJob extends \LogicException
{
    public static function withoutRun(object $job): self
    {
        return new self(sprintf(
            'startgate: %s was dispatched without a run the gate admitted; dispatch it with the accepted start result (%s::dispatch($result))',
            $job::class,
            $job::class,
        ));
    }

    public static function aroundTheGate(object $job): self
    {
        return new self(sprintf(
            'startgate: %s reached its work without RunThroughGate marking its run running; dispatch it onto a queue (its middleware() runs the gate)',
            $job::class,
        ));
    }
}
