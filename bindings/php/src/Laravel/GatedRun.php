<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Startgate\Exception;
use Startgate\Gate;

/**
 * The run a gated job works for, while RunThroughGate holds it running:
 * what the gate pinned (the provider connection, subject and params), a
 * heartbeat for long work, and the summary to complete it with.
 */
final class GatedRun
{
    public readonly int $id;

    public readonly int $fencingToken;

    public readonly string $operation;

    public readonly string $tenantId;

    /** The provider connection the gate resolved and pinned; talk to the provider through this one only. */
    public readonly ?string $providerConnectionId;

    public readonly ?string $subject;

    /** @var array<string, mixed>|null */
    public readonly ?array $params;

    /** @var array<string, mixed>|null */
    private ?array $summary = null;

    /** @param array<string, mixed> $run the admitted run document */
    public function __construct(private Gate $gate, array $run)
    {
        $this->id = $run['id'];
        $this->fencingToken = $run['fencing_token'];
        $this->operation = (string) ($run['operation'] ?? '');
        $this->tenantId = (string) ($run['tenant_id'] ?? '');
        $this->providerConnectionId = $run['provider_connection_id'] ?? null;
        $this->subject = $run['subject'] ?? null;
        $this->params = $run['params'] ?? null;
    }

    /**
     * Extends the run's lease; call it during long work, well within the
     * operation's lease. Throws RunLost when the run is no longer this
     * job's (reaped, taken over, cancelled): stop working, the middleware
     * ends the job without completing or retrying it.
     */
    public function heartbeat(): void
    {
        try {
            $this->gate->heartbeat($this->id, $this->fencingToken);
        } catch (Exception $e) {
            if (RunThroughGate::endsTheJob($e)) {
                throw new RunLost($this->id, $e);
            }
            throw $e;
        }
    }

    /**
     * The summary to complete the run with (a JSON object: counts, ids;
     * never secrets).
     *
     * @param array<string, mixed> $summary
     */
    public function summarize(array $summary): void
    {
        $this->summary = $summary;
    }

    /** @return array<string, mixed>|null */
    public function summary(): ?array
    {
        return $this->summary;
    }
}
