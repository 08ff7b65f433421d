<?php

namespace Tests\Feature;

use Startgate\Laravel\Facades\Startgate;
use Startgate\Laravel\Feedback;
use Tests\TestCase;

/** Each outcome's feedback, as JSON and as the flash a browser gets. */
final class FeedbackTest extends TestCase
{
    public function test_each_outcome_has_its_feedback(): void
    {
        $accepted = $this->press('contoso');
        $this->assertSame(['success', 'Inventory sync queued', 'accepted', 'queued'], [$accepted['status'], $accepted['title'], $accepted['outcome'], $accepted['status_label']]);
        $this->assertSame([['label' => 'View run', 'url' => "/admin/operations/{$accepted['run_id']}"]], $accepted['actions']);

        $deduped = $this->press('contoso');
        $this->assertSame(['info', 'Inventory sync already running', 'deduped', 'already running'], [$deduped['status'], $deduped['title'], $deduped['outcome'], $deduped['status_label']]);
        $this->assertNull($deduped['run_id']);

        $busy = $this->press('contoso', 'restore', ['backup' => 'b-7']);
        $this->assertSame(['warning', 'scope_busy', 'scope busy'], [$busy['status'], $busy['outcome'], $busy['status_label']]);
        $this->assertStringContainsString('Inventory sync', $busy['body']);

        $blocked = $this->press('fabrikam');
        $this->assertSame(['danger', 'Inventory sync blocked', 'blocked'], [$blocked['status'], $blocked['title'], $blocked['outcome']]);
        $this->assertSame('Admin consent has not been granted for this Microsoft Graph connection.', $blocked['body']);
        $this->assertSame(['label' => 'Grant admin consent', 'url' => '/tenants/fabrikam/provider-connections/graph-fab/consent'], $blocked['actions'][0]);

        $denied = $this->press('contoso', 'inventory-sync', [], ['X-Operator' => 'mallory']);
        $this->assertSame(['danger', 'denied'], [$denied['status'], $denied['outcome']]);
        $this->assertNull($denied['run_id']);
    }

    public function test_a_browser_gets_the_feedback_flashed_and_shown_on_the_next_page(): void
    {
        $response = $this->post('/tenants/fabrikam/inventory-sync', [], self::ALICE);
        $response->assertRedirect('/tenants/fabrikam');
        $response->assertSessionHas(Feedback::SESSION_KEY, function (array $feedback): bool {
            return $feedback['status'] === 'danger'
                && $feedback['title'] === 'Inventory sync blocked'
                && $feedback['actions'][0]['label'] === 'Grant admin consent';
        });
        $page = $this->get('/tenants/fabrikam');
        $page->assertOk();
        $page->assertSee('<div class="notification danger"><strong>Inventory sync blocked</strong>', false);
        $page->assertSee('<a href="/tenants/fabrikam/provider-connections/graph-fab/consent">Grant admin consent</a>', false);
    }

    public function test_feedback_of_a_run(): void
    {
        $run = $this->runRecord($this->press('contoso')['run_id']);
        $feedback = Feedback::ofRun($run);
        $this->assertSame('info', $feedback->status());
        $this->assertSame(['status', 'title', 'body', 'actions', 'outcome', 'status_label', 'run_url'], array_keys($feedback->toArray()));
        $this->assertSame("/admin/operations/{$run['id']}", $feedback->toArray()['run_url']);
    }

    public function test_without_filament_there_is_no_notification_object(): void
    {
        $this->assertFalse(class_exists('Filament\\Notifications\\Notification'));
        $this->expectException(\LogicException::class);
        $alice = ['id' => 'alice', 'is_member' => true, 'capabilities' => ['inventory.sync']];
        Feedback::of(Startgate::start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => $alice]))->toNotification();
    }
}
