<?php
// Runs the PHP binding's tests: php bindings/php/tests/run.php

declare(strict_types=1);

require_once __DIR__ . '/harness.php';
foreach (glob(__DIR__ . '/*_test.php') as $file) {
    require_once $file;
}
exit(Harness::run());
