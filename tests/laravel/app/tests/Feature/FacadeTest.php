<?php

namespace Tests\Feature;

use Startgate\Exception;
use Startgate\Laravel\Facades\Startgate;
use Tests\TestCase;

final class FacadeTest extends TestCase
{
    public function test_the_facade_is_the_gate(): void
    {
        $alice = ['id' => 'alice', 'is_member' => true, 'capabilities' => ['inventory.sync']];
        $result = Startgate::start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => $alice]);
        $this->assertSame('accepted', $result['outcome']);
        $this->assertSame('graph', $result['provider_connection_id']);
        $this->assertSame('queued', Startgate::getRun($result['run']['id'])['status']);
        $this->assertSame('deduped', Startgate::start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => $alice])['outcome']);
        // The alias Laravel registered from the package's composer.json.
        $this->assertSame(Startgate::getFacadeRoot(), \Startgate::getFacadeRoot());
    }

    public function test_bad_input_through_the_facade_is_the_libraries_error(): void
    {
        try {
            Startgate::getRun(1.0);
            $this->fail('a float run id was accepted');
        } catch (Exception $e) {
            $this->assertSame('invalid_request', $e->getErrorCode());
            $this->assertSame('run_id', $e->getField());
        }
    }
}
