/* A tiny assertion kit for the C tests: counts checks, reports failures, never aborts. */
#ifndef STARTGATE_TEST_CHECK_H
#define STARTGATE_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "startgate.h"

static int checks = 0;
static int failures = 0;

#define CHECK(cond, ...)                                                    \
  do {                                                                      \
    checks++;                                                               \
    if (!(cond)) {                                                          \
      failures++;                                                           \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
      fprintf(stderr, __VA_ARGS__);                                         \
      fputc('\n', stderr);                                                  \
    }                                                                       \
  } while (0)

/* Checks that a call failed with `want` and the stable `code`, that the
 * message mentions `needle` (when given), and frees the error. Takes the
 * error's address: C leaves the order of argument evaluation open, so the
 * error is read here, after the call (an argument) has written it. */
static inline void expect_error(startgate_status got, startgate_error **errp, startgate_status want,
                         const char *code, const char *needle, const char *what) {
  startgate_error *err = *errp;
  *errp = NULL;
  CHECK(got == want, "%s: status %u, wanted %u", what, (unsigned)got, (unsigned)want);
  CHECK(err != NULL, "%s: no error object", what);
  if (err == NULL) return;
  CHECK(strcmp(startgate_error_code(err), code) == 0, "%s: code %s, wanted %s", what,
        startgate_error_code(err), code);
  if (needle != NULL) {
    CHECK(strstr(startgate_error_message(err), needle) != NULL, "%s: message \"%s\" lacks \"%s\"",
          what, startgate_error_message(err), needle);
  }
  startgate_error_free(err);
}

/* Reports an unexpected failure and frees the error; true on success. */
static inline int ok(startgate_status got, startgate_error **errp, const char *what) {
  startgate_error *err = *errp;
  *errp = NULL;
  checks++;
  if (got == STARTGATE_OK) return 1;
  failures++;
  fprintf(stderr, "FAIL %s: status %u (%s): %s\n", what, (unsigned)got,
          err ? startgate_error_code(err) : "?", err ? startgate_error_message(err) : "?");
  startgate_error_free(err);
  return 0;
}

/* The integer after the first occurrence of `"key":` at or after `from`. */
static inline long long json_int(const char *json, const char *from, const char *key) {
  const char *start = from ? strstr(json, from) : json;
  if (start == NULL) return -1;
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *at = strstr(start, pattern);
  if (at == NULL) return -1;
  return strtoll(at + strlen(pattern), NULL, 10);
}

static inline int contains(const char *haystack, const char *needle) {
  return haystack != NULL && strstr(haystack, needle) != NULL;
}

static inline int finish(const char *name) {
  printf("%s: %d checks, %d failures\n", name, checks, failures);
  return failures == 0 ? 0 : 1;
}

#endif
