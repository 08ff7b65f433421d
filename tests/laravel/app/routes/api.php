<?php

use App\Http\Controllers\TenantOperations;
use Illuminate\Support\Facades\Route;

// The same buttons for JSON clients (no session, no CSRF): the HTTP storm.
Route::post('/tenants/{tenant}/inventory-sync', [TenantOperations::class, 'inventorySync']);
Route::post('/tenants/{tenant}/restore', [TenantOperations::class, 'restore']);
Route::post('/tenants/{tenant}/onboarding', [TenantOperations::class, 'onboarding']);

// The same request path without the gate: the storm's baseline.
Route::post('/ping', fn () => response()->json(['ok' => true, 'worker_pid' => getmypid()]));
