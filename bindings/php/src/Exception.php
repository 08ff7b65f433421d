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

    private ?string $field;

    public function __construct(string $errorCode, string $message, int $status = 0, ?\Throwable $previous = null, ?string $field = null)
    {
        parent::__construct($message, $status, $previous);
        $this->errorCode = $errorCode;
        $this->field = $field;
    }

    /** An invalid_request worded as the library words it on every surface. */
    public static function invalid(string $field, string $message): self
    {
        return new self(self::INVALID_REQUEST, "invalid request: {$field}: {$message}", 1, null, $field);
    }

    /**
     * For invalid_request: the offending field by its contract name
     * ("tenant_id", "actor.capabilities[2]", "run_id"); null otherwise.
     */
    public function getField(): ?string
    {
        return $this->field;
    }

    /** The stable code string, e.g. "invalid_transition". (getCode() is the C status number.) */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }
}
