/* Surface-overhead driver for the C ABI: times startgate_present and
 * startgate_start (accepted, fresh scope each) one call at a time and prints
 * {"present_ns": median, "start_ns": median}. Usage: bench URL REGISTRY N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "startgate.h"

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static long long median(long long *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[n / 2];
}

static void request(char *buf, size_t size, int scope) {
  snprintf(buf, size,
           "{\"operation\":\"inventory.sync\",\"tenant_id\":\"bench\",\"actor\":{\"id\":\"bench\","
           "\"is_member\":true,\"capabilities\":[\"inventory.sync\",\"compliance.read\"]},"
           "\"provider_connection_id\":\"c-%d\"}",
           scope);
}

static int fail(const char *what, startgate_error *err) {
  fprintf(stderr, "%s: %s\n", what, err ? startgate_error_message(err) : "?");
  startgate_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int n = atoi(argv[3]);
  startgate_gate *gate = NULL;
  startgate_error *err = NULL;
  char buf[512];
  char *out = NULL;
  if (startgate_open_file(argv[1], argv[2], NULL, &gate, &err) != STARTGATE_OK) return fail("open", err);
  for (int i = 0; i < 50; i++) { /* warm-up on scopes beyond the measured ones */
    request(buf, sizeof buf, n + i);
    if (startgate_start(gate, buf, &out, &err) != STARTGATE_OK) return fail("warm-up", err);
    startgate_string_free(out);
  }
  char *result = NULL;
  request(buf, sizeof buf, n + 50);
  if (startgate_start(gate, buf, &result, &err) != STARTGATE_OK) return fail("start", err);
  long long *present = malloc(sizeof(long long) * (size_t)n);
  long long *start = malloc(sizeof(long long) * (size_t)n);
  for (int i = 0; i < n; i++) {
    long long t0 = now_ns();
    if (startgate_present(gate, result, &out, &err) != STARTGATE_OK) return fail("present", err);
    present[i] = now_ns() - t0;
    startgate_string_free(out);
  }
  for (int i = 0; i < n; i++) {
    request(buf, sizeof buf, i);
    long long t0 = now_ns();
    if (startgate_start(gate, buf, &out, &err) != STARTGATE_OK) return fail("start", err);
    start[i] = now_ns() - t0;
    if (strstr(out, "\"outcome\":\"accepted\"") == NULL) {
      fprintf(stderr, "not accepted: %s\n", out);
      return 1;
    }
    startgate_string_free(out);
  }
  printf("{\"present_ns\": %lld, \"start_ns\": %lld}\n", median(present, n), median(start, n));
  startgate_string_free(result);
  free(present);
  free(start);
  startgate_free(gate);
  return 0;
}
