<?php

namespace App\Exceptions;

use Startgate\Laravel\HasReasonCode;

/** The provider answered 429: the run fails with the catalogue's provider_throttled. */
final class ProviderThrottled extends \RuntimeException implements HasReasonCode
{
    public function __construct()
    {
        parent::__construct('Microsoft Graph throttled the request (429)');
    }

    public function reasonCode(): string
    {
        return 'provider_throttled';
    }
}
