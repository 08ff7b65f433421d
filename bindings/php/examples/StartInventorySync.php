<?php

declare(strict_types=1);

namespace App\Actions;

use App\Jobs\SyncInventoryJob;
use App\Support\Queue;
use Startgate\Gate;

/** The "Inventory sync" button: one start path, one notification, a job only when queued. */
final class StartInventorySync
{
    public function __construct(private Gate $gate, private Queue $queue)
    {
    }

    /** @return array{title: string, body: string, status: string, actions: list<array{label: string, url: string}>} */
    public function handle(array $user, string $tenantId, ?string $connectionId = null): array
    {
        $result = $this->gate->start([
            'operation' => 'inventory.sync',
            'tenant_id' => $tenantId,
            'actor' => ['id' => $user['id'], 'is_member' => $user['is_member'], 'capabilities' => $user['capabilities']],
            'provider_connection_id' => $connectionId, // null: the tenant's default connection
        ]);

        if ($result['outcome'] === 'accepted') {
            // The job runs against exactly the connection the gate pinned.
            $this->queue->dispatch(new SyncInventoryJob(
                $result['run']['id'],
                $result['run']['fencing_token'],
                $result['provider_connection_id'],
            ));
        }

        $shown = $this->gate->present($result);
        return [
            'title' => $shown['title'],
            'body' => $shown['body'],
            'status' => $shown['tone'], // success | info | warning | danger
            'actions' => $shown['actions'],
        ];
    }
}
