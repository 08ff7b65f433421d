<?php

namespace App\Jobs;

/** Restores a backup onto the tenant. */
class ExecuteRestore extends OneProviderCall
{
    protected const CALL = 'restore';
}
