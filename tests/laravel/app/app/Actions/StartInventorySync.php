<?php

namespace App\Actions;

use App\Jobs\SyncInventory;
use Startgate\Laravel\Facades\Startgate;

/** The "Inventory sync" button on a tenant's page. */
final class StartInventorySync
{
    /** Returns the start result; show it with Feedback::of($result). */
    public function __invoke(array $operator, string $tenantId, ?array $params = null): array
    {
        $result = Startgate::start([
            'operation' => 'inventory.sync',
            'tenant_id' => $tenantId,
            'actor' => $operator,
            'params' => $params,
        ]);
        if ($result['outcome'] === 'accepted') {
            SyncInventory::dispatch($result); // the job carries the run: id, token, pinned connection
        }
        return $result;
    }
}
