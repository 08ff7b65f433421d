<?php

declare(strict_types=1);

namespace Startgate\Laravel\Console;

use Illuminate\Console\Command;
use Startgate\Exception;
use Startgate\Gate;

/**
 * What the startgate:* commands share: the gate from the container, a
 * failed call reported as its message with exit status 1 (no stack trace),
 * strict numbers from the command line, and --json output.
 */
abstract class GateCommand extends Command
{
    public function handle(Gate $gate): int
    {
        try {
            return $this->perform($gate);
        } catch (Exception $e) {
            $this->error($e->getMessage());
            return self::FAILURE;
        }
    }

    abstract protected function perform(Gate $gate): int;

    /** A whole number typed on the command line, refused (naming $field) unless it is digits. */
    protected function wholeNumber(string $field, mixed $text): int
    {
        if (!is_string($text) || preg_match('/^[0-9]{1,18}$/', $text) !== 1) {
            throw Exception::invalid($field, sprintf('expected a whole number, found %s', json_encode($text, JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE)));
        }
        return (int) $text;
    }

    protected function printJson(mixed $value): int
    {
        $this->line(json_encode($value, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR));
        return self::SUCCESS;
    }
}
