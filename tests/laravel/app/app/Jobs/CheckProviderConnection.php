<?php

namespace App\Jobs;

/** Checks the provider connection's consent and credential (onboarding's second step). */
class CheckProviderConnection extends OneProviderCall
{
    protected const CALL = 'check connection';
}
