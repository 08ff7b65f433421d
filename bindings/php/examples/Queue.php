<?php

declare(strict_types=1);

namespace App\Support;

/** Stands in for Laravel's queue and notifications in the example. */
final class Queue
{
    /** @var list<object> */
    public array $jobs = [];

    /** @var list<array{user: string, notification: array}> */
    public array $notifications = [];

    public function dispatch(object $job): void
    {
        $this->jobs[] = $job;
    }

    public function notify(string $user, array $notification): void
    {
        $this->notifications[] = ['user' => $user, 'notification' => $notification];
    }

    public function next(): ?object
    {
        return array_shift($this->jobs);
    }
}
