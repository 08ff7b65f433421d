<?php

// Who may press the buttons (a stand-in for the app's users and roles; the
// request names the operator in the X-Operator header).
return [
    'alice' => [
        'is_member' => true,
        'capabilities' => ['tenant.manage', 'provider.manage', 'inventory.sync', 'restore.execute'],
    ],
    'mallory' => [
        'is_member' => false,
        'capabilities' => [],
    ],
];
