/* Every operation of the C ABI and every error path: NULL arguments, invalid
 * UTF-8, malformed JSON, wrong types, unknown methods, closed, freed and
 * foreign handles. Usage: test_api DATABASE_URL REGISTRY_FILE */
#include "check.h"

static const char *ALICE =
    "\"actor\":{\"id\":\"alice\",\"is_member\":true,\"capabilities\":"
    "[\"inventory.sync\",\"restore.execute\",\"tenant.manage\",\"provider.manage\"]}";

static char *start(startgate_gate *gate, const char *operation, const char *tenant) {
  char request[512];
  snprintf(request, sizeof request, "{\"operation\":\"%s\",\"tenant_id\":\"%s\",%s}", operation,
           tenant, ALICE);
  char *out = NULL;
  startgate_error *err = NULL;
  if (!ok(startgate_start(gate, request, &out, &err), &err, operation)) return NULL;
  return out;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DATABASE_URL REGISTRY_FILE\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  const char *registry = argv[2];
  startgate_error *err = NULL;
  char *out = NULL;
  startgate_gate *gate = NULL;

  /* Version: header, runtime and Cargo.toml agree (the last via STARTGATE_VERSION). */
  CHECK(strcmp(startgate_version(), STARTGATE_VERSION) == 0, "version %s vs header %s",
        startgate_version(), STARTGATE_VERSION);
  CHECK(strcmp(startgate_status_code(STARTGATE_INVALID_TRANSITION), "invalid_transition") == 0,
        "status code string");
  CHECK(strcmp(startgate_status_code(4242), "unknown") == 0, "unknown status");

  /* Opening: every argument is checked. */
  expect_error(startgate_open(NULL, "", NULL, &gate, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "url", "open NULL url");
  expect_error(startgate_open(url, "[operations.x]\nlabel = 1\n", NULL, &gate, &err), &err,
               STARTGATE_REGISTRY_INVALID, "registry_invalid", "operations.x.label", "bad registry");
  expect_error(startgate_open_file(url, "/nonexistent/registry.toml", NULL, &gate, &err), &err,
               STARTGATE_REGISTRY_INVALID, "registry_invalid", "cannot read", "missing registry");
  expect_error(startgate_open_file(url, registry, "{\"statement_timeout_ms\":\"soon\"}", &gate, &err),
               &err, STARTGATE_INVALID_REQUEST, "invalid_request", "statement_timeout_ms", "bad options");
  expect_error(startgate_open_file(url, registry, "{\"colour\":1}", &gate, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "colour", "unknown option");
  expect_error(startgate_open_file(url, registry, "[1]", &gate, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "options", "options not an object");
  char bad_utf8[] = {'s', 'q', 'l', 'i', 't', 'e', ':', (char)0xff, 0};
  expect_error(startgate_open_file(bad_utf8, registry, NULL, &gate, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "url: must be valid Unicode text", "invalid UTF-8 url");
  expect_error(startgate_open_file(url, registry, NULL, NULL, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "out_gate", "NULL out_gate");
  CHECK(gate == NULL, "failed opens wrote no handle");

  if (!ok(startgate_open_file(url, registry, "{\"manual_clock\":\"2026-01-01T09:00:00Z\"}", &gate, &err),
          &err, "open")) {
    return finish("c api");
  }
  ok(startgate_migrate(gate, &err), &err, "migrate");

  /* Connections. */
  ok(startgate_upsert_connection(gate,
                                 "{\"tenant_id\":\"contoso\",\"id\":\"graph\",\"provider\":\"g\","
                                 "\"is_default\":true,\"consent\":\"granted\",\"credential\":\"present\","
                                 "\"health\":\"ok\"}",
                                 &out, &err),
     &err, "upsert");
  CHECK(contains(out, "\"is_default\":true"), "upsert result %s", out);
  startgate_string_free(out);
  out = NULL;
  expect_error(startgate_upsert_connection(gate, "{\"tenant_id\":\"contoso\",\"id\":\"x\",\"provider\":\"g\",\"consent\":\"maybe\"}", &out, &err),
               &err, STARTGATE_INVALID_REQUEST, "invalid_request", "consent", "bad consent");
  expect_error(startgate_upsert_connection(gate, "{\"tenant_id\":", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", NULL, "truncated JSON");
  expect_error(startgate_upsert_connection(gate, NULL, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "connection: must not be NULL", "NULL connection");
  CHECK(out == NULL, "failures write no output");
  ok(startgate_get_connection(gate, "contoso", "graph", &out, &err), &err, "get_connection");
  CHECK(contains(out, "\"id\":\"graph\""), "get_connection %s", out);
  startgate_string_free(out);
  ok(startgate_get_connection(gate, "contoso", "nope", &out, &err), &err, "get_connection absent");
  CHECK(out != NULL && strcmp(out, "null") == 0, "absent connection is null: %s", out);
  startgate_string_free(out);
  ok(startgate_list_connections(gate, "contoso", &out, &err), &err, "list_connections");
  CHECK(out != NULL && out[0] == '[' && contains(out, "graph"), "list %s", out);
  startgate_string_free(out);

  /* Start: accepted, deduped, errors. */
  char *accepted = start(gate, "inventory.sync", "contoso");
  CHECK(contains(accepted, "\"outcome\":\"accepted\""), "accepted: %s", accepted);
  long long run_id = json_int(accepted, "\"run\"", "id");
  long long token = json_int(accepted, "\"run\"", "fencing_token");
  CHECK(run_id > 0 && token == 1, "run %lld token %lld", run_id, token);
  char *deduped = start(gate, "inventory.sync", "contoso");
  CHECK(contains(deduped, "\"outcome\":\"deduped\""), "deduped: %s", deduped);
  startgate_string_free(deduped);
  char *busy = start(gate, "restore.execute", "contoso");
  CHECK(contains(busy, "\"outcome\":\"scope_busy\""), "busy: %s", busy);
  startgate_string_free(busy);
  char *blocked = start(gate, "inventory.sync", "fabrikam");
  CHECK(contains(blocked, "provider_connection_missing"), "blocked: %s", blocked);
  startgate_string_free(blocked);

  out = (char *)"sentinel";
  expect_error(startgate_start(gate, "{\"operation\":\"inventory.synk\",\"tenant_id\":\"t\",\"actor\":{\"id\":\"a\",\"is_member\":true}}", &out, &err),
               &err, STARTGATE_UNKNOWN_OPERATION, "unknown_operation", "inventory.synk", "unknown operation");
  CHECK(strcmp(out, "sentinel") == 0, "output untouched on failure");
  out = NULL;
  expect_error(startgate_start(gate, "{\"operation\":\"inventory.sync\",\"tenant_id\":\"t\",\"actor\":{\"id\":\"a\",\"is_member\":\"yes\"}}", &out, &err),
               &err, STARTGATE_INVALID_REQUEST, "invalid_request", "actor.is_member", "wrong type");
  expect_error(startgate_start(gate, "{\"operation\":\"inventory.sync\",\"tenant\":\"t\"}", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "tenant", "unknown field");
  char bad_json[] = {'{', '"', (char)0xc3, (char)0x28, '"', ':', '1', '}', 0};
  expect_error(startgate_start(gate, bad_json, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "must be valid Unicode text", "invalid UTF-8 request");
  expect_error(startgate_start(gate, "[", &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", NULL, "malformed JSON");
  /* A document is exactly one JSON value: nothing may follow it. */
  const char *trailing[] = {
      "{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\",\"actor\":{\"id\":\"a\",\"is_member\":true}} trailing words",
      "{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\",\"actor\":{\"id\":\"a\",\"is_member\":true}}}}}",
      "{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\",\"actor\":{\"id\":\"a\",\"is_member\":true}} {}",
  };
  for (size_t i = 0; i < sizeof trailing / sizeof *trailing; i++) {
    expect_error(startgate_start(gate, trailing[i], &out, &err), &err, STARTGATE_INVALID_REQUEST,
                 "invalid_request", "request: not one JSON value", "a document with something after it");
  }
  expect_error(startgate_call(gate, "get_run", "{\"run_id\": 1} {\"run_id\": 2}", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "args: not one JSON value", "two argument documents");
  /* A lone surrogate escaped in JSON, and bytes that are not UTF-8, name their field. */
  expect_error(startgate_call(gate, "get_connection", "{\"tenant_id\": \"\\ud800\", \"id\": \"graph\"}", &out, &err),
               &err, STARTGATE_INVALID_REQUEST, "invalid_request", "tenant_id: must be valid Unicode text",
               "escaped lone surrogate");
  char latin1[] = "{\"tenant_id\": \"caf\xe9\", \"id\": \"graph\"}";
  expect_error(startgate_call(gate, "get_connection", latin1, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "tenant_id: must be valid Unicode text", "Latin-1 bytes");
  /* A NUL travels in JSON and is refused, never taken as the end of the string. */
  expect_error(startgate_call(gate, "get_connection", "{\"tenant_id\": \"contoso\\u0000-other\", \"id\": \"graph\"}",
                              &out, &err),
               &err, STARTGATE_INVALID_REQUEST, "invalid_request", "tenant_id: must not contain NUL characters",
               "NUL in a tenant");
  {
    startgate_gate *other = NULL;
    expect_error(startgate_open_json("{\"url\": \"sqlite::memory:\\u0000/var/lib/app/real.db\", \"registry_toml\": \"\"}",
                                     &other, &err),
                 &err, STARTGATE_INVALID_REQUEST, "invalid_request", "url: must not contain NUL characters",
                 "NUL in a URL");
    CHECK(other == NULL, "no handle on failure");
  }
  {
    startgate_error *field_err = NULL;
    CHECK(startgate_call(gate, "mark_running", "{\"run_id\": 1.9, \"fencing_token\": 1}", &out, &field_err) ==
              STARTGATE_INVALID_REQUEST,
          "a fraction is no run id");
    CHECK(field_err != NULL && strcmp(startgate_error_field(field_err), "run_id") == 0, "the error names run_id");
    startgate_error_free(field_err);
    CHECK(startgate_error_field(NULL) == NULL, "NULL error, NULL field");
  }
  expect_error(startgate_start(gate, NULL, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "request: must not be NULL", "NULL request");
  expect_error(startgate_start(gate, "{}", NULL, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "out_json", "NULL out_json");
  CHECK(startgate_start(gate, "{}", &out, NULL) == STARTGATE_INVALID_REQUEST,
        "a NULL out_error still gets the status");
  {
    /* A 10 MB document is refused cleanly. */
    size_t size = 10 * 1024 * 1024;
    char *huge = malloc(size + 64);
    CHECK(huge != NULL, "malloc");
    if (huge != NULL) {
      strcpy(huge, "{\"operation\":\"inventory.sync\",\"subject\":\"");
      size_t len = strlen(huge);
      memset(huge + len, 'x', size);
      strcpy(huge + len + size, "\"}");
      expect_error(startgate_start(gate, huge, &out, &err), &err, STARTGATE_INVALID_REQUEST,
                   "invalid_request", "limit", "10 MB request");
      err = NULL;
      free(huge);
    }
  }

  /* A non-member: denied 404, nothing else. */
  ok(startgate_start(gate, "{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\",\"actor\":{\"id\":\"m\",\"is_member\":false}}", &out, &err),
     &err, "denied");
  CHECK(contains(out, "\"outcome\":\"denied\"") && contains(out, "\"status\":404") &&
            contains(out, "\"holder\":null") && contains(out, "\"run\":null"),
        "denied: %s", out);
  startgate_string_free(out);

  /* Check: per-request errors in place, nothing written. */
  ok(startgate_check(gate, "[{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\",\"actor\":{\"id\":\"a\",\"is_member\":true,\"capabilities\":[\"inventory.sync\"]}},{\"operation\":1}]", &out, &err),
     &err, "check");
  CHECK(contains(out, "\"outcome\":\"deduped\"") && contains(out, "\"error\":{\"code\":\"invalid_request\""),
        "check: %s", out);
  startgate_string_free(out);
  expect_error(startgate_check(gate, "{}", &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "requests", "check of an object");

  /* Presenter. */
  ok(startgate_present(gate, accepted, &out, &err), &err, "present");
  CHECK(contains(out, "\"title\":\"Inventory sync queued\"") && contains(out, "\"tone\":\"success\""),
        "present: %s", out);
  startgate_string_free(out);
  expect_error(startgate_present(gate, "{\"outcome\":\"maybe\"}", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "outcome", "present bad outcome");

  /* Lifecycle. */
  expect_error(startgate_mark_running(gate, run_id, token + 5, &out, &err), &err,
               STARTGATE_INVALID_TRANSITION, "invalid_transition", "fencing token", "wrong token");
  expect_error(startgate_heartbeat(gate, run_id, token, &out, &err), &err, STARTGATE_INVALID_TRANSITION,
               "invalid_transition", "mark_running first", "heartbeat before running");
  ok(startgate_mark_running(gate, run_id, token, &out, &err), &err, "mark_running");
  CHECK(contains(out, "\"status\":\"running\""), "running: %s", out);
  startgate_string_free(out);
  ok(startgate_advance_clock(gate, 60, &err), &err, "advance_clock");
  expect_error(startgate_advance_clock(gate, -1, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "seconds", "negative seconds");
  ok(startgate_heartbeat(gate, run_id, token, &out, &err), &err, "heartbeat");
  CHECK(contains(out, "\"stale_at\":\"2026-01-01T09:06:00Z\""), "heartbeat: %s", out);
  startgate_string_free(out);
  ok(startgate_get_run(gate, run_id, &out, &err), &err, "get_run");
  CHECK(contains(out, "\"fencing_token\":null"), "get_run hides the token: %s", out);
  char *shown = NULL;
  ok(startgate_present_run(gate, out, &shown, &err), &err, "present_run");
  CHECK(contains(shown, "Inventory sync running"), "present_run: %s", shown);
  startgate_string_free(shown);
  startgate_string_free(out);
  expect_error(startgate_get_run(gate, 987654, &out, &err), &err, STARTGATE_RUN_NOT_FOUND,
               "run_not_found", "987654", "get_run unknown");
  ok(startgate_list_runs(gate, NULL, &out, &err), &err, "list_runs");
  CHECK(contains(out, "\"status\":\"running\""), "list_runs: %s", out);
  startgate_string_free(out);
  ok(startgate_list_runs(gate, "{\"active\":true}", &out, &err), &err, "list_runs active");
  startgate_string_free(out);
  expect_error(startgate_list_runs(gate, "{\"active\":\"yes\"}", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "active", "bad filter");
  ok(startgate_attempts_for_run(gate, run_id, &out, &err), &err, "attempts");
  CHECK(contains(out, "\"outcome\":\"deduped\"") && contains(out, "\"outcome\":\"scope_busy\""),
        "attempts: %s", out);
  startgate_string_free(out);

  char completion[256];
  snprintf(completion, sizeof completion,
           "{\"run_id\":%lld,\"fencing_token\":%lld,\"outcome\":\"succeeded\",\"summary\":{\"items\":3}}",
           run_id, token);
  ok(startgate_complete(gate, completion, &out, &err), &err, "complete");
  CHECK(contains(out, "\"notify_initiator\":true") && contains(out, "\"next\":null"), "complete: %s", out);
  startgate_string_free(out);
  expect_error(startgate_complete(gate, completion, &out, &err), &err, STARTGATE_INVALID_TRANSITION,
               "invalid_transition", "already succeeded", "complete twice");
  expect_error(startgate_complete(gate, "{\"run_id\":1,\"fencing_token\":1,\"outcome\":\"done\"}", &out, &err),
               &err, STARTGATE_INVALID_REQUEST, "invalid_request", "outcome", "bad outcome");

  /* Sequence, cancel (advances the sequence), reap. */
  ok(startgate_start_sequence(gate, "{\"sequence\":\"onboarding.bootstrap\",\"tenant_id\":\"contoso\",\"actor\":{\"id\":\"a\",\"is_member\":true,\"capabilities\":[\"tenant.manage\",\"provider.manage\",\"inventory.sync\"]}}", &out, &err),
     &err, "start_sequence");
  CHECK(contains(out, "\"outcome\":\"accepted\"") && contains(out, "\"status\":\"pending\""),
        "sequence: %s", out);
  long long first = json_int(out, "\"run\"", "id");
  startgate_string_free(out);
  ok(startgate_cancel(gate, first, NULL, &out, &err), &err, "cancel");
  CHECK(contains(out, "\"status\":\"cancelled\"") && contains(out, "\"operation\":\"provider.connection.check\""),
        "cancel admitted the next step: %s", out);
  long long second = json_int(out, "\"next\"", "id");
  startgate_string_free(out);
  ok(startgate_cancel(gate, second, "operator_stop", &out, &err), &err, "cancel with reason");
  CHECK(contains(out, "\"reason_code\":\"operator_stop\""), "cancel reason: %s", out);
  startgate_string_free(out);
  expect_error(startgate_cancel(gate, second, "Not A Code", &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "reason_code", "bad reason code");
  ok(startgate_advance_clock(gate, 3600, &err), &err, "advance an hour");
  ok(startgate_reap_stale(gate, &out, &err), &err, "reap");
  CHECK(contains(out, "\"reaped\":[{") && contains(out, "run_lease_expired"), "reap: %s", out);
  startgate_string_free(out);

  /* The generic call. */
  char args[64];
  snprintf(args, sizeof args, "{\"run_id\":%lld}", run_id);
  ok(startgate_call(gate, "get_run", args, &out, &err), &err, "call get_run");
  CHECK(contains(out, "\"status\":\"succeeded\""), "call: %s", out);
  startgate_string_free(out);
  expect_error(startgate_call(gate, "frobnicate", NULL, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "frobnicate", "unknown method");
  expect_error(startgate_call(gate, "get_run", "{\"run_id\":\"one\"}", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "run_id", "wrong argument type");
  expect_error(startgate_call(gate, "get_run", "{\"run_id\":1,\"extra\":2}", &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "extra", "unknown argument");

  /* The result format: PHP's serialize() text from the next call on, back to JSON after. */
  expect_error(startgate_set_result_format(gate, 7, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "format", "unknown result format");
  ok(startgate_set_result_format(gate, STARTGATE_RESULT_PHP_SERIALIZE, &err), &err, "php format");
  ok(startgate_call(gate, "get_run", args, &out, &err), &err, "call get_run, php format");
  CHECK(strncmp(out, "a:", 2) == 0 && contains(out, "s:6:\"status\";s:9:\"succeeded\";"),
        "serialize() text: %s", out);
  startgate_string_free(out);
  ok(startgate_get_connection(gate, "contoso", "nope", &out, &err), &err, "absent connection, php format");
  CHECK(strcmp(out, "N;") == 0, "absent connection is N;: %s", out);
  startgate_string_free(out);
  ok(startgate_set_result_format(gate, STARTGATE_RESULT_JSON, &err), &err, "json format");
  ok(startgate_call(gate, "get_run", args, &out, &err), &err, "call get_run, json again");
  CHECK(contains(out, "\"status\":\"succeeded\""), "JSON again: %s", out);
  startgate_string_free(out);

  /* Foreign, closed and freed handles. */
  int not_a_gate = 7;
  expect_error(startgate_get_run((startgate_gate *)&not_a_gate, 1, &out, &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "not a live startgate_gate", "foreign handle");
  expect_error(startgate_get_run(NULL, 1, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "gate", "NULL handle");
  ok(startgate_close(gate, &err), &err, "close");
  ok(startgate_close(gate, &err), &err, "close twice");
  expect_error(startgate_get_run(gate, run_id, &out, &err), &err, STARTGATE_STORE_UNAVAILABLE,
               "store_unavailable", "closed", "use after close");
  startgate_free(gate);
  expect_error(startgate_get_run(gate, run_id, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "not a live", "use after free");
  startgate_free(gate); /* a stale pointer is ignored */
  startgate_free(NULL);
  startgate_string_free(NULL);
  startgate_error_free(NULL);
  CHECK(startgate_error_code(NULL) == NULL && startgate_error_message(NULL) == NULL, "NULL error");

  startgate_string_free(accepted);
  return finish("c api");
}
