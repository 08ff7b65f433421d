<?php

// The startgate PHP package as Debian installs it (/usr/share/php/Startgate):
// require 'Startgate/autoload.php' (on PHP's default include_path) and use
// Startgate\Gate. The library and header are found in the system's places.

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Startgate\\')) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen('Startgate\\'))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
