<?php

namespace App\Jobs;

use App\Support\ProviderClient;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\SerializesModels;
use Startgate\Laravel\GatedJob;

/** A gated job that is one call to the provider, through the pinned connection. */
abstract class OneProviderCall implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable, SerializesModels, GatedJob;

    /** What the call does, as provider_calls records it. */
    protected const CALL = '';

    public $tries = 3;

    public function handle(ProviderClient $provider): void
    {
        $provider->call($this->gateRun(), static::CALL);
    }
}
