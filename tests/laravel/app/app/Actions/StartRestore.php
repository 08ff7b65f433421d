<?php

namespace App\Actions;

use App\Jobs\ExecuteRestore;
use Startgate\Laravel\Facades\Startgate;

/** The "Restore" button on a backup of a tenant: the backup is the run's subject. */
final class StartRestore
{
    public function __invoke(array $operator, string $tenantId, string $backupId, ?array $params = null): array
    {
        $result = Startgate::start([
            'operation' => 'restore.execute',
            'tenant_id' => $tenantId,
            'actor' => $operator,
            'subject' => "backup:$backupId",
            'params' => $params,
        ]);
        if ($result['outcome'] === 'accepted') {
            ExecuteRestore::dispatch($result);
        }
        return $result;
    }
}
