<?php
// The opcache.preload script for PHP-FPM: loads libstartgate and its
// declarations once in the master, so every worker finds them as the FFI
// scope "startgate" under ffi.enable=preload (PHP's default). In php.ini:
//
//     opcache.enable = 1
//     opcache.preload = /path/to/vendor/startgate/startgate/preload.php
//     ; when the FPM master runs as root, the user preloading runs as:
//     opcache.preload_user = www-data
//
// STARTGATE_LIB / STARTGATE_HEADER, when the master's environment sets them,
// say where the files are; otherwise they are found where the Debian package
// installs them.

declare(strict_types=1);

require_once __DIR__ . '/src/Exception.php';
require_once __DIR__ . '/src/Gate.php';

\Startgate\Gate::preload();
