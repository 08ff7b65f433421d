<?php

namespace App\Jobs;

/** Verifies the tenant with the provider (onboarding's first step). */
class VerifyTenant extends OneProviderCall
{
    protected const CALL = 'verify tenant';
}
