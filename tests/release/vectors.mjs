// Runs the named conformance vectors on SQLite through the installed
// `startgate` package, with the Node tests' own runner (copied beside this
// file by tests/release/run): `node vectors.mjs 01_accepted 02_deduped …`.
// Prints `passed N of N` when every one passed; a failure throws.
import { join } from 'node:path'

import { runScenario } from './conformance.mjs'
import { repo, sqliteUrl } from './helpers.mjs'

const names = process.argv.slice(2)
if (names.length === 0) throw new Error('name the vectors to run')
for (const name of names) {
  await runScenario(join(repo, 'tests', 'conformance', `${name}.json`), sqliteUrl())
  console.log(`ok ${name} (${process.arch})`)
}
console.log(`passed ${names.length} of ${names.length} on ${process.arch}`)
