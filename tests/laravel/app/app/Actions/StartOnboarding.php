<?php

namespace App\Actions;

use Startgate\Laravel\Facades\Startgate;
use Startgate\Laravel\RunDispatcher;

/**
 * The "Onboarding bootstrap" button: verify the tenant, check its
 * connection, sync its inventory, one step after the other on its scope.
 * The first step is dispatched here; the job middleware dispatches the rest.
 */
final class StartOnboarding
{
    public function __construct(private RunDispatcher $dispatcher)
    {
    }

    public function __invoke(array $operator, string $tenantId, ?array $params = null): array
    {
        $result = Startgate::startSequence([
            'sequence' => 'onboarding.bootstrap',
            'tenant_id' => $tenantId,
            'actor' => $operator,
            'params' => $params,
        ]);
        $this->dispatcher->dispatch($result); // when accepted: to config('startgate.jobs')
        return $result;
    }
}
