<?php

namespace App\Http\Controllers;

use App\Actions\StartInventorySync;
use App\Actions\StartOnboarding;
use App\Actions\StartRestore;
use App\Support\Operator;
use Illuminate\Http\Request;
use Startgate\Laravel\Feedback;

/**
 * The buttons of a tenant's page. A browser gets the feedback flashed and is
 * sent back to the page; a JSON client (the HTTP storm) gets it as JSON,
 * with the run it admitted and which PHP-FPM worker served it.
 */
final class TenantOperations
{
    public function show(Request $request, string $tenant)
    {
        $feedback = $request->session()->get(Feedback::SESSION_KEY);
        $html = '<h1>' . e($tenant) . '</h1>';
        if (is_array($feedback)) {
            $html .= sprintf('<div class="notification %s"><strong>%s</strong><p>%s</p>', e($feedback['status']), e($feedback['title']), e($feedback['body']));
            foreach ($feedback['actions'] as $action) {
                $html .= sprintf('<a href="%s">%s</a>', e($action['url']), e($action['label']));
            }
            $html .= '</div>';
        }
        return response($html);
    }

    public function inventorySync(Request $request, StartInventorySync $start, string $tenant)
    {
        return $this->answer($request, $tenant, $start(Operator::fromRequest($request), $tenant, self::params($request)));
    }

    public function restore(Request $request, StartRestore $start, string $tenant)
    {
        $backup = (string) $request->input('backup', 'latest');
        return $this->answer($request, $tenant, $start(Operator::fromRequest($request), $tenant, $backup, self::params($request)));
    }

    public function onboarding(Request $request, StartOnboarding $start, string $tenant)
    {
        return $this->answer($request, $tenant, $start(Operator::fromRequest($request), $tenant, self::params($request)));
    }

    private function answer(Request $request, string $tenant, array $result)
    {
        $feedback = Feedback::of($result);
        if (!$request->expectsJson()) {
            $feedback->send();
            return redirect("/tenants/$tenant");
        }
        $run = $result['outcome'] === 'accepted' ? $result['run'] : null;
        return response()->json($feedback->toArray() + [
            'tenant_id' => $tenant,
            'run_id' => $run['id'] ?? null,
            'fencing_token' => $run['fencing_token'] ?? null,
            'replaced_run_id' => $result['replaced_run_id'] ?? null,
            'worker_pid' => getmypid(),
            'worker_rss_kb' => self::rssKb(),
        ]);
    }

    private static function params(Request $request): ?array
    {
        $params = $request->input('params');
        return is_array($params) && $params !== [] ? $params : null;
    }

    /** This worker's resident memory, from /proc: what a leak in the library would grow. */
    private static function rssKb(): ?int
    {
        $status = @file_get_contents('/proc/self/status');
        return $status !== false && preg_match('/^VmRSS:\s+(\d+) kB/m', $status, $m) ? (int) $m[1] : null;
    }
}
