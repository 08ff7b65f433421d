<?php

use Illuminate\Database\Migrations\Migration;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Schema;

/**
 * The admin app as it was before startgate: its own operation_runs and
 * provider_connections tables (which the gate's tables, in their own schema,
 * must leave alone), the database queue's tables, and a record of every call
 * the jobs make to the provider.
 */
class CreateAdminTables extends Migration
{
    public function up()
    {
        Schema::create('tenants', function (Blueprint $table) {
            $table->string('key')->primary();
            $table->string('name');
        });
        Schema::create('operation_runs', function (Blueprint $table) {
            $table->id();
            $table->string('tenant_key');
            $table->string('kind');
            $table->string('state');
            $table->timestamps();
        });
        Schema::create('provider_connections', function (Blueprint $table) {
            $table->id();
            $table->string('tenant_key');
            $table->string('provider');
            $table->text('client_secret_ciphertext')->nullable();
            $table->string('status');
        });
        Schema::create('provider_calls', function (Blueprint $table) {
            $table->id();
            $table->bigInteger('run_id');
            $table->bigInteger('fencing_token');
            $table->string('operation');
            $table->string('tenant_id');
            $table->string('provider_connection_id');
            $table->string('what');
            $table->integer('worker_pid');
            $table->timestamp('started_at', 6);
            $table->timestamp('finished_at', 6)->nullable();
        });
        Schema::create('jobs', function (Blueprint $table) {
            $table->bigIncrements('id');
            $table->string('queue')->index();
            $table->longText('payload');
            $table->unsignedTinyInteger('attempts');
            $table->unsignedInteger('reserved_at')->nullable();
            $table->unsignedInteger('available_at');
            $table->unsignedInteger('created_at');
        });
        Schema::create('failed_jobs', function (Blueprint $table) {
            $table->id();
            $table->string('uuid')->unique();
            $table->text('connection');
            $table->text('queue');
            $table->longText('payload');
            $table->longText('exception');
            $table->timestamp('failed_at')->useCurrent();
        });
    }

    public function down()
    {
        foreach (['failed_jobs', 'jobs', 'provider_calls', 'provider_connections', 'operation_runs', 'tenants'] as $table) {
            Schema::dropIfExists($table);
        }
    }
}
