<?php

namespace App\Jobs;

use App\Support\ProviderClient;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use Startgate\Laravel\GatedJob;

/** Syncs a tenant's inventory, page by page, through the connection the gate pinned. */
class SyncInventory implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels, GatedJob;

    public $tries = 3;

    public function handle(ProviderClient $provider): void
    {
        $run = $this->gateRun(); // marked running by the middleware: connection, params, heartbeat
        $items = 0;
        for ($page = 1; $page <= ($run->params['pages'] ?? 2); $page++) {
            $items += $provider->call($run, "inventory page $page");
            $run->heartbeat(); // extends the lease; RunLost if the run was taken over
        }
        $run->summarize(['items' => $items]);
    }
}
