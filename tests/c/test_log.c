/* The log callback: records arrive on the calling thread before the call
 * returns, with the tracing fields as JSON, never params or credentials; a
 * callback may call startgate; NULL stops delivery; a bad level is refused.
 * Usage: test_log DATABASE_URL REGISTRY_FILE */
#include <pthread.h>

#include "check.h"

#define MAX_RECORDS 64
#define SECRET "param-secret-c-5e1a"

struct record {
  char level[8];
  char message[256];
  char fields[1024];
  int on_caller_thread;
};

static struct record records[MAX_RECORDS];
static int count = 0;
static pthread_t caller;
static startgate_gate *reentrant_gate = NULL;
static int reentrant_ok = 0;

static void on_log(void *user_data, const char *level, const char *message, const char *fields) {
  int *calls = user_data;
  (*calls)++;
  if (count < MAX_RECORDS) {
    struct record *r = &records[count++];
    snprintf(r->level, sizeof r->level, "%s", level);
    snprintf(r->message, sizeof r->message, "%s", message);
    snprintf(r->fields, sizeof r->fields, "%s", fields);
    r->on_caller_thread = pthread_equal(pthread_self(), caller);
  }
  /* A callback may call startgate: its own records wait for a later delivery. */
  if (reentrant_gate != NULL) {
    char *out = NULL;
    startgate_error *err = NULL;
    if (startgate_call(reentrant_gate, "metrics", "{}", &out, &err) == STARTGATE_OK) reentrant_ok++;
    startgate_string_free(out);
    startgate_error_free(err);
  }
}

static const struct record *find(const char *message_part) {
  for (int i = 0; i < count; i++) {
    if (strstr(records[i].message, message_part) != NULL) return &records[i];
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DATABASE_URL REGISTRY_FILE\n", argv[0]);
    return 2;
  }
  caller = pthread_self();
  startgate_error *err = NULL;
  char *out = NULL;
  startgate_gate *gate = NULL;
  int calls = 0;

  expect_error(startgate_set_log_callback(on_log, &calls, "loud", &err), &err,
               STARTGATE_INVALID_REQUEST, "invalid_request", "level", "unknown level");
  if (!ok(startgate_set_log_callback(on_log, &calls, "info", &err), &err, "set callback")) {
    return finish("c log");
  }
  if (!ok(startgate_open_file(argv[1], argv[2], NULL, &gate, &err), &err, "open") ||
      !ok(startgate_migrate(gate, &err), &err, "migrate")) {
    return finish("c log");
  }
  const char *connection =
      "{\"tenant_id\":\"t1\",\"id\":\"graph\",\"provider\":\"microsoft_graph\",\"display_name\":\"Graph\","
      "\"is_default\":true,\"enabled\":true,\"consent\":\"granted\",\"credential\":\"present\","
      "\"health\":\"ok\"}";
  if (ok(startgate_upsert_connection(gate, connection, &out, &err), &err, "upsert")) {
    startgate_string_free(out);
  }
  CHECK(find("upsert_connection") == NULL, "debug records stay out at info");

  const char *request =
      "{\"operation\":\"inventory.sync\",\"tenant_id\":\"t1\",\"params\":{\"note\":\"" SECRET "\"},"
      "\"actor\":{\"id\":\"alice\",\"is_member\":true,\"capabilities\":[\"inventory.sync\"]}}";
  int before = count;
  if (ok(startgate_start(gate, request, &out, &err), &err, "start")) startgate_string_free(out);
  CHECK(count == before + 1, "the start's record arrived before start returned (%d)", count - before);
  const struct record *accepted = find("start inventory.sync: accepted");
  CHECK(accepted != NULL, "an accepted record");
  if (accepted != NULL) {
    CHECK(strcmp(accepted->level, "info") == 0, "level %s", accepted->level);
    CHECK(accepted->on_caller_thread, "delivered on the calling thread");
    const char *fields[] = {"\"call\":\"start\"", "\"operation\":\"inventory.sync\"",
                            "\"tenant_id\":\"t1\"", "\"outcome\":\"accepted\"", "\"run_id\":",
                            "\"duration_us\":", "\"round_trips\":", "\"retries\":0"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
      CHECK(strstr(accepted->fields, fields[i]) != NULL, "%s in %s", fields[i], accepted->fields);
    }
  }

  /* Deduped, from inside which the callback calls startgate. */
  reentrant_gate = gate;
  if (ok(startgate_start(gate, request, &out, &err), &err, "dedupe")) startgate_string_free(out);
  reentrant_gate = NULL;
  CHECK(find("start inventory.sync: deduped") != NULL, "a deduped record");
  CHECK(reentrant_ok >= 1, "a startgate call from the callback worked");

  /* A failed call is a warning naming its code and field, not its input. */
  const char *invalid =
      "{\"operation\":\"inventory.sync\",\"tenant_id\":\"\",\"params\":{\"note\":\"" SECRET "\"},"
      "\"actor\":{\"id\":\"alice\",\"is_member\":true,\"capabilities\":[\"inventory.sync\"]}}";
  expect_error(startgate_start(gate, invalid, &out, &err), &err, STARTGATE_INVALID_REQUEST,
               "invalid_request", "tenant_id", "empty tenant");
  const struct record *failed = find("start failed: invalid_request");
  CHECK(failed != NULL && strcmp(failed->level, "warn") == 0, "a warning for the failed start");
  if (failed != NULL) {
    CHECK(strstr(failed->fields, "\"field\":\"tenant_id\"") != NULL, "%s", failed->fields);
  }
  for (int i = 0; i < count; i++) {
    CHECK(strstr(records[i].fields, SECRET) == NULL && strstr(records[i].message, SECRET) == NULL,
          "params leaked: %s %s", records[i].message, records[i].fields);
  }
  CHECK(calls == count, "user_data came back unchanged (%d vs %d)", calls, count);

  /* NULL stops delivery. */
  if (ok(startgate_set_log_callback(NULL, NULL, NULL, &err), &err, "detach")) {
    int seen = count;
    if (ok(startgate_start(gate, request, &out, &err), &err, "start after detach")) {
      startgate_string_free(out);
    }
    CHECK(count == seen, "no record after detaching (%d)", count - seen);
  }
  startgate_close(gate, NULL);
  startgate_free(gate);
  return finish("c log");
}
