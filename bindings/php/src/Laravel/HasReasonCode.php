<?php

declare(strict_types=1);

namespace Startgate\Laravel;

/**
 * An exception that knows the reason code a failed run should carry (a
 * catalogue code such as `provider_throttled`: a-z, 0-9, '.', '_', '-').
 * Other exceptions fail the run with `job_failed`.
 */
interface HasReasonCode
{
    public function reasonCode(): string;
}
