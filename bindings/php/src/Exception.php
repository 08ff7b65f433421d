<?php

declare(strict_types=1);

namespace Startgate;

/**
 * A failed startgate call. getErrorCode() is the stable code of the contract
 * ("invalid_request", "unknown_operation", "registry_invalid", "run_not_found",
 * "invalid_transition", "store_unavailable", "store_timeout", "migration_failed",
 * "internal"); the message is for people. Refusals (denied, scope busy,
 * blocked) are start results, not exceptions.
 */
final class Exception extends \RuntimeException
{
    public const INVALID_REQUEST = 'invalid_request';
    public const UNKNOWN_OPERATION = 'unknown_operation';
    public const REGISTRY_INVALID = 'registry_invalid';
    public const RUN_NOT_FOUND = 'run_not_found';
    public const INVALID_TRANSITION = 'invalid_transition';
    public const STORE_UNAVAILABLE = 'store_unavailable';
    public const STORE_TIMEOUT = 'store_timeout';
    public const MIGRATION_FAILED = 'migration_failed';
    public const INTERNAL = 'internal';

    private string $errorCode;

    public function __construct(string $errorCode, string $message, int $status = 0, ?\Throwable $previous = null)
    {
        parent::__construct($message, $status, $previous);
        $this->errorCode = $errorCode;
    }

    /** The stable code string, e.g. "invalid_transition". (getCode() is the C status number.) */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }
}
