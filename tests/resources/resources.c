/* Resource bounds through the C ABI: HANDLES open/close cycles on URL, then
 * CALLS calls on one handle (present, and a database `check` every 100th),
 * printing RSS before and after as one JSON line. It then waits for a line on
 * stdin (so the runner can count the database's connections while the last
 * handle is still open) and exits.
 * Usage: resources URL REGISTRY_FILE HANDLES CALLS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "startgate.h"

static long rss_kb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what, startgate_error *err) {
  fprintf(stderr, "%s: %s: %s\n", what, err ? startgate_error_code(err) : "?",
          err ? startgate_error_message(err) : "?");
  startgate_error_free(err);
  exit(1);
}

static const char *REQUEST =
    "{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\","
    "\"actor\":{\"id\":\"ops\",\"is_member\":true,\"capabilities\":[\"inventory.sync\"]}}";
static const char *CONNECTION =
    "{\"tenant_id\":\"contoso\",\"id\":\"graph\",\"provider\":\"microsoft_graph\",\"is_default\":true,"
    "\"consent\":\"granted\",\"credential\":\"present\",\"health\":\"ok\"}";
static const char *OPTIONS = "{\"max_connections\":2}";

static void cycle_handles(const char *url, const char *registry, long n) {
  for (long i = 0; i < n; i++) {
    startgate_gate *gate = NULL;
    startgate_error *err = NULL;
    char *out = NULL;
    if (startgate_open_file(url, registry, OPTIONS, &gate, &err) != STARTGATE_OK) die("open", err);
    if (startgate_list_connections(gate, "contoso", &out, &err) != STARTGATE_OK) die("list", err);
    startgate_string_free(out);
    if (startgate_close(gate, &err) != STARTGATE_OK) die("close", err);
    startgate_free(gate);
  }
}

static void calls(startgate_gate *gate, const char *result, long n) {
  char checks[1024];
  snprintf(checks, sizeof checks, "[%s]", REQUEST);
  for (long i = 0; i < n; i++) {
    char *out = NULL;
    startgate_error *err = NULL;
    startgate_status s = i % 100 == 0 ? startgate_check(gate, checks, &out, &err)
                                      : startgate_present(gate, result, &out, &err);
    if (s != STARTGATE_OK) die("call", err);
    startgate_string_free(out);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s URL REGISTRY_FILE HANDLES CALLS\n", argv[0]);
    return 2;
  }
  const char *url = argv[1], *registry = argv[2];
  long handles = atol(argv[3]), n = atol(argv[4]);
  startgate_gate *gate = NULL;
  startgate_error *err = NULL;
  char *out = NULL, *result = NULL;
  if (startgate_open_file(url, registry, OPTIONS, &gate, &err) != STARTGATE_OK) die("open", err);
  if (startgate_migrate(gate, &err) != STARTGATE_OK) die("migrate", err);
  if (startgate_upsert_connection(gate, CONNECTION, &out, &err) != STARTGATE_OK) die("upsert", err);
  startgate_string_free(out);
  if (startgate_start(gate, REQUEST, &result, &err) != STARTGATE_OK) die("start", err);
  /* Warm up allocator, runtime and pools before the first reading. */
  cycle_handles(url, registry, handles / 10 > 1000 ? handles / 10 : 1000);
  calls(gate, result, n / 10 + 1);
  long before = rss_kb();
  cycle_handles(url, registry, handles);
  long after_handles = rss_kb();
  calls(gate, result, n);
  long after = rss_kb();
  printf("{\"surface\":\"c\",\"handles\":%ld,\"calls\":%ld,\"rss_before_kb\":%ld,"
         "\"rss_after_handles_kb\":%ld,\"rss_after_kb\":%ld}\n",
         handles, n, before, after_handles, after);
  fflush(stdout);
  char line[16];
  if (fgets(line, sizeof line, stdin) == NULL) { /* runner gone: exit anyway */ }
  startgate_string_free(result);
  startgate_close(gate, NULL);
  startgate_free(gate);
  return 0;
}
