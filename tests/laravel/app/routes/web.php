<?php

use App\Http\Controllers\TenantOperations;
use Illuminate\Support\Facades\Route;

Route::get('/tenants/{tenant}', [TenantOperations::class, 'show']);
Route::post('/tenants/{tenant}/inventory-sync', [TenantOperations::class, 'inventorySync']);
Route::post('/tenants/{tenant}/restore', [TenantOperations::class, 'restore']);
Route::post('/tenants/{tenant}/onboarding', [TenantOperations::class, 'onboarding']);
