<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Illuminate\Container\Container;
use Startgate\Gate;

/**
 * What the operator sees after a start (or about a run), on the Laravel
 * side: the gate's presentation, with its tone as Filament's notification
 * status (success / info / warning / danger), a title, a body and actions
 * (label and URL: "Grant admin consent", "View run").
 *
 *     Feedback::of($result)->send();   // a Filament notification, or a session flash
 *     return response()->json(Feedback::of($result)->toArray());
 */
final class Feedback
{
    /** The session key send() flashes to when Filament is not installed. */
    public const SESSION_KEY = 'startgate';

    /** @param array<string, mixed> $presentation what Gate::present() / presentRun() return */
    public function __construct(private array $presentation)
    {
    }

    /** The feedback for a start result (start, startSequence, a sequence's next). */
    public static function of(array $result, ?Gate $gate = null): self
    {
        return new self(($gate ?? self::gate())->present($result));
    }

    /** The feedback for a run (run details, a finished run's notification). */
    public static function ofRun(array $run, ?Gate $gate = null): self
    {
        return new self(($gate ?? self::gate())->presentRun($run));
    }

    /** Filament's notification status: success, info, warning or danger. */
    public function status(): string
    {
        return $this->presentation['tone'];
    }

    public function title(): string
    {
        return $this->presentation['title'];
    }

    public function body(): string
    {
        return $this->presentation['body'];
    }

    /** @return list<array{label: string, url: string}> */
    public function actions(): array
    {
        return $this->presentation['actions'];
    }

    /**
     * A plain array: status, title, body, actions, and the outcome
     * (accepted, deduped, scope_busy, blocked, denied; or a run's status),
     * its public wording (status_label: queued, already running, …) and
     * the run's URL.
     *
     * @return array{status: string, title: string, body: string, actions: list<array{label: string, url: string}>, outcome: string, status_label: string, run_url: ?string}
     */
    public function toArray(): array
    {
        return [
            'status' => $this->status(),
            'title' => $this->title(),
            'body' => $this->body(),
            'actions' => $this->actions(),
            'outcome' => $this->presentation['outcome'],
            'status_label' => $this->presentation['status_label'],
            'run_url' => $this->presentation['run_url'] ?? null,
        ];
    }

    /**
     * A Filament notification (Filament 3 or later must be installed):
     * title, body, status, and one URL action per action.
     */
    public function toNotification(): object
    {
        $notification = '\\Filament\\Notifications\\Notification';
        if (!class_exists($notification)) {
            throw new \LogicException('startgate: Feedback::toNotification() needs filament/notifications; use toArray() or send()');
        }
        // Filament 4 moved actions to Filament\Actions; 3 has them under Notifications.
        $action = class_exists('\\Filament\\Actions\\Action') ? '\\Filament\\Actions\\Action' : '\\Filament\\Notifications\\Actions\\Action';
        $buttons = [];
        foreach ($this->actions() as $i => $button) {
            $buttons[] = $action::make("startgate_action_{$i}")->label($button['label'])->url($button['url']);
        }
        return $notification::make()
            ->title($this->title())
            ->body($this->body())
            ->status($this->status())
            ->actions($buttons);
    }

    /**
     * Shows the feedback to the operator: as a Filament notification when
     * Filament is installed, else flashed to the session under
     * Feedback::SESSION_KEY (as toArray()) for the next page to render.
     */
    public function send(): void
    {
        if (class_exists('\\Filament\\Notifications\\Notification')) {
            $this->toNotification()->send();
            return;
        }
        Container::getInstance()->make('session')->flash(self::SESSION_KEY, $this->toArray());
    }

    private static function gate(): Gate
    {
        return Container::getInstance()->make(Gate::class);
    }
}
