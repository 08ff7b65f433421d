/* One handle shared by 8 threads starting on 2 hot scopes at once: exactly one
 * accepted run per scope, everyone else deduped or scope busy.
 * Usage: test_threads DATABASE_URL REGISTRY_FILE */
#include <pthread.h>

#include "check.h"

#define THREADS 8
#define ROUNDS 25

static startgate_gate *gate;
static int accepted[THREADS];
static int refused[THREADS];
static int errors[THREADS];

static void *worker(void *arg) {
  int me = (int)(long)arg;
  for (int round = 0; round < ROUNDS; round++) {
    char request[512];
    snprintf(request, sizeof request,
             "{\"operation\":\"%s\",\"tenant_id\":\"tenant-%d\",\"actor\":{\"id\":\"t%d\","
             "\"is_member\":true,\"capabilities\":[\"inventory.sync\",\"restore.execute\"]}}",
             me % 2 ? "inventory.sync" : "restore.execute", round % 2, me);
    char *out = NULL;
    startgate_error *err = NULL;
    if (startgate_start(gate, request, &out, &err) != STARTGATE_OK) {
      errors[me]++;
      fprintf(stderr, "thread %d: %s\n", me, startgate_error_message(err));
      startgate_error_free(err);
      continue;
    }
    if (strstr(out, "\"outcome\":\"accepted\"")) accepted[me]++;
    else refused[me]++;
    startgate_string_free(out);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  startgate_error *err = NULL;
  if (!ok(startgate_open_file(argv[1], argv[2], NULL, &gate, &err), &err, "open")) return finish("c threads");
  ok(startgate_migrate(gate, &err), &err, "migrate");
  for (int t = 0; t < 2; t++) {
    char conn[256];
    char *out = NULL;
    snprintf(conn, sizeof conn,
             "{\"tenant_id\":\"tenant-%d\",\"id\":\"graph\",\"provider\":\"g\",\"is_default\":true,"
             "\"consent\":\"granted\",\"credential\":\"present\",\"health\":\"ok\"}",
             t);
    ok(startgate_upsert_connection(gate, conn, &out, &err), &err, "connection");
    startgate_string_free(out);
  }
  pthread_t threads[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
  int total_accepted = 0, total_refused = 0, total_errors = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    total_accepted += accepted[i];
    total_refused += refused[i];
    total_errors += errors[i];
  }
  CHECK(total_errors == 0, "%d calls failed", total_errors);
  CHECK(total_accepted == 2, "nothing completes, so exactly one run per scope: %d accepted",
        total_accepted);
  CHECK(total_accepted + total_refused == THREADS * ROUNDS, "every call answered");
  char *out = NULL;
  ok(startgate_list_runs(gate, "{\"active\":true}", &out, &err), &err, "list");
  CHECK(contains(out, "tenant-0") && contains(out, "tenant-1"), "%s", out);
  startgate_string_free(out);
  startgate_free(gate);
  return finish("c threads");
}
