<?php

// Loads the startgate PHP binding without Composer: require this file.
require_once __DIR__ . '/src/Exception.php';
require_once __DIR__ . '/src/Gate.php';
