// The README's Node quickstart is examples/quickstart.mjs verbatim, and it runs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

import { repo } from './helpers.mjs'

const example = join(import.meta.dirname, '..', 'examples', 'quickstart.mjs')

test('README shows the quickstart verbatim', () => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8')
  const marker = '<!-- quickstart: bindings/node/examples/quickstart.mjs -->\n```js\n'
  const start = readme.indexOf(marker)
  assert.ok(start >= 0, 'README has the Node quickstart marker')
  const body = readme.slice(start + marker.length, readme.indexOf('```', start + marker.length))
  assert.equal(body, readFileSync(example, 'utf8'))
})

test('the quickstart runs', () => {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`/tmp/startgate-node-quickstart.db${suffix}`, { force: true })
  const out = execFileSync(process.execPath, [example], { cwd: repo, encoding: 'utf8' })
  assert.equal((out.match(/\[queued\]/g) ?? []).length, 1, out)
  assert.equal((out.match(/\[scope busy\]/g) ?? []).length, 1, out)
  assert.match(out, /succeeded/)
})
