<?php

declare(strict_types=1);

namespace App\Jobs;

use App\Support\Queue;
use Startgate\Exception;
use Startgate\Gate;

/** The worker side: mark running, heartbeat while working, complete, dispatch what comes next. */
final class SyncInventoryJob
{
    public function __construct(
        public readonly int $runId,
        public readonly int $fencingToken,
        public readonly string $providerConnectionId,
    ) {
    }

    /** @param callable(string): int $syncPage syncs one page through the pinned connection, returns the items it saw */
    public function handle(Gate $gate, Queue $queue, callable $syncPage, int $pages = 3): void
    {
        try {
            $gate->markRunning($this->runId, $this->fencingToken);
            $items = 0;
            for ($page = 1; $page <= $pages; $page++) {
                $items += $syncPage($this->providerConnectionId);
                $gate->heartbeat($this->runId, $this->fencingToken); // extends the lease
            }
        } catch (Exception $e) {
            if ($e->getErrorCode() === Exception::INVALID_TRANSITION) {
                return; // reaped, taken over or cancelled: another worker owns the scope now
            }
            throw $e;
        }

        $done = $gate->complete([
            'run_id' => $this->runId,
            'fencing_token' => $this->fencingToken,
            'outcome' => 'succeeded',
            'summary' => ['items' => $items],
        ]);
        if ($done['notify_initiator']) {
            $queue->notify($done['run']['actor_id'], $gate->presentRun($done['run']));
        }
        // A sequence (e.g. onboarding) hands over its next step when this one ends.
        $next = $done['next'];
        if ($next !== null && $next['outcome'] === 'accepted') {
            $queue->dispatch(new self($next['run']['id'], $next['run']['fencing_token'], $next['provider_connection_id']));
        }
    }
}
