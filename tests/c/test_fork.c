/* A handle opened before fork() keeps working in the child (fresh runtime and
 * connections there) and in the parent, as PHP-FPM's master and workers need.
 * Usage: test_fork DATABASE_URL REGISTRY_FILE */
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define CHILDREN 3

static const char *REQUEST =
    "{\"operation\":\"inventory.sync\",\"tenant_id\":\"tenant-%d\",\"actor\":{\"id\":\"fpm\","
    "\"is_member\":true,\"capabilities\":[\"inventory.sync\"]}}";

/* Starts, runs and completes one run on tenant-N; 0 on success. */
static int lifecycle(startgate_gate *gate, int n) {
  int before = failures;
  char request[256], completion[160];
  char *out = NULL;
  startgate_error *err = NULL;
  snprintf(request, sizeof request, REQUEST, n);
  if (!ok(startgate_start(gate, request, &out, &err), &err, "start")) return 1;
  int accepted = contains(out, "\"outcome\":\"accepted\"");
  long long run = json_int(out, "\"run\"", "id");
  long long token = json_int(out, "\"run\"", "fencing_token");
  startgate_string_free(out);
  CHECK(accepted, "tenant-%d: start accepted", n);
  if (!ok(startgate_mark_running(gate, run, token, &out, &err), &err, "mark_running")) return 1;
  startgate_string_free(out);
  snprintf(completion, sizeof completion,
           "{\"run_id\":%lld,\"fencing_token\":%lld,\"outcome\":\"succeeded\"}", run, token);
  if (!ok(startgate_complete(gate, completion, &out, &err), &err, "complete")) return 1;
  startgate_string_free(out);
  return failures - before;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  startgate_gate *gate = NULL;
  startgate_error *err = NULL;
  if (!ok(startgate_open_file(argv[1], argv[2], NULL, &gate, &err), &err, "open")) return finish("c fork");
  ok(startgate_migrate(gate, &err), &err, "migrate");
  for (int t = 0; t <= CHILDREN; t++) {
    char conn[256];
    char *out = NULL;
    snprintf(conn, sizeof conn,
             "{\"tenant_id\":\"tenant-%d\",\"id\":\"graph\",\"provider\":\"g\",\"is_default\":true,"
             "\"consent\":\"granted\",\"credential\":\"present\",\"health\":\"ok\"}",
             t);
    ok(startgate_upsert_connection(gate, conn, &out, &err), &err, "connection");
    startgate_string_free(out);
  }
  /* The parent used the handle (pool, runtime threads) before forking. */
  CHECK(lifecycle(gate, 0) == 0, "parent before fork");

  pid_t children[CHILDREN];
  for (int i = 0; i < CHILDREN; i++) {
    children[i] = fork();
    if (children[i] == 0) {
      /* In the child: the inherited handle works, twice over. */
      int bad = lifecycle(gate, i + 1) + lifecycle(gate, i + 1);
      startgate_free(gate);
      _exit(bad == 0 ? 0 : 1);
    }
  }
  for (int i = 0; i < CHILDREN; i++) {
    int status = 0;
    CHECK(waitpid(children[i], &status, 0) == children[i], "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed (status %d)", i, status);
  }
  /* The parent's handle is untouched by the children. */
  CHECK(lifecycle(gate, 0) == 0, "parent after fork");
  char *out = NULL;
  ok(startgate_list_runs(gate, "{\"status\":\"succeeded\"}", &out, &err), &err, "list");
  int runs = 0;
  for (const char *p = out; (p = strstr(p, "\"status\":\"succeeded\"")) != NULL; p++) runs++;
  CHECK(runs == 2 + 2 * CHILDREN, "all %d runs recorded, found %d", 2 + 2 * CHILDREN, runs);
  startgate_string_free(out);
  startgate_free(gate);
  return finish("c fork");
}
