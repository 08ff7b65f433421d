<?php

namespace App\Support;

use App\Exceptions\ProviderThrottled;
use Illuminate\Support\Facades\DB;
use Startgate\Laravel\GatedRun;

/**
 * The provider (Microsoft Graph), reduced to what the tests observe: every
 * call is recorded in provider_calls with the run, token and connection it
 * was made for, and takes the time the run's params ask for (page_ms,
 * hang_ms); `fail` makes the provider throttle.
 */
final class ProviderClient
{
    /** One call through $run's pinned connection; returns the items it saw. */
    public function call(GatedRun $run, string $what): int
    {
        $id = DB::table('provider_calls')->insertGetId([
            'run_id' => $run->id,
            'fencing_token' => $run->fencingToken,
            'operation' => $run->operation,
            'tenant_id' => $run->tenantId,
            'provider_connection_id' => $run->providerConnectionId,
            'what' => $what,
            'worker_pid' => getmypid(),
            'started_at' => now(),
        ]);
        $params = $run->params ?? [];
        usleep(1000 * (int) ($params['page_ms'] ?? 5));
        if (isset($params['hang_ms'])) {
            usleep(1000 * (int) $params['hang_ms']); // a call that never returns in time
        }
        if (!empty($params['fail'])) {
            throw new ProviderThrottled();
        }
        DB::table('provider_calls')->where('id', $id)->update(['finished_at' => now()]);
        return 40;
    }
}
