<?php

// Composer's autoloader for the application and its packages (startgate),
// then Laravel 8 as Debian installs it (php-laravel-framework) in place of a
// vendor/laravel/framework.
require __DIR__ . '/../vendor/autoload.php';
require_once 'Illuminate/autoload.php';
