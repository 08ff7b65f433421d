/* The smoke program of the C library: opens a gate on an in-memory SQLite
 * database, migrates, stores a connection and starts an operation; prints the
 * version and "accepted". Built against the Debian package by
 * tests/package/run and against each release artifact by tests/release/run. */
#include <stdio.h>
#include <string.h>
#include <startgate.h>

int main(void) {
  const char *registry = "[operations.\"inventory.sync\"]\nlabel = \"Inventory sync\"\n"
                         "capability = \"inventory.sync\"\nrequires = [\"consent\"]\n";
  startgate_gate *gate = NULL;
  startgate_error *err = NULL;
  char *out = NULL;
  if (strcmp(startgate_version(), STARTGATE_VERSION) != 0) return 10;
  if (startgate_open("sqlite::memory:", registry, NULL, &gate, &err) != STARTGATE_OK) return 11;
  if (startgate_migrate(gate, &err) != STARTGATE_OK) return 12;
  if (startgate_upsert_connection(gate, "{\"tenant_id\":\"contoso\",\"id\":\"graph\",\"provider\":\"p\","
      "\"is_default\":true,\"consent\":\"granted\"}", &out, &err) != STARTGATE_OK) return 13;
  startgate_string_free(out);
  if (startgate_start(gate, "{\"operation\":\"inventory.sync\",\"tenant_id\":\"contoso\","
      "\"actor\":{\"id\":\"a\",\"is_member\":true,\"capabilities\":[\"inventory.sync\"]}}", &out, &err) != STARTGATE_OK) return 14;
  printf("%s %s\n", startgate_version(), strstr(out, "\"outcome\":\"accepted\"") ? "accepted" : out);
  startgate_string_free(out);
  startgate_free(gate);
  return 0;
}
