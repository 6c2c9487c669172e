import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_RENDER_LIMITS } from './limits.js';
import { parseManifests } from './manifests.js';
import { RenderError } from './render-error.js';

const SECRET = 'fuzz-secret-value-7';

/** YAML-ish text: real manifest fragments, aliases, anchors, flow and block syntax, and noise. */
const yamlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        'apiVersion: v1\n',
        'kind: ConfigMap\n',
        'kind: List\nitems:\n',
        'metadata:\n  name: a\n',
        'metadata: {name: b, namespace: c}\n',
        '---\n',
        '- &x [1, 2]\n',
        '- *x\n',
        'a: &a [*a]\n',
        '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}\n',
        `stringData: {password: ${SECRET}}\n`,
        '  - ',
        ': : :\n',
        '"unterminated\n',
        '\t\n',
      ),
      fc.string({ maxLength: 20 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

test('fuzz: the manifest parser returns objects or a RenderError naming the file, never anything else, never the content', () => {
  fc.assert(
    fc.property(yamlish, (text) => {
      try {
        const objects = parseManifests(text, 'env/app.yaml', DEFAULT_RENDER_LIMITS, { documents: 0 });
        for (const o of objects) {
          assert.equal(typeof o.apiVersion, 'string');
          assert.equal(typeof o.kind, 'string');
          assert.equal(typeof o.metadata?.name, 'string');
        }
      } catch (err) {
        assert.ok(err instanceof RenderError, `unexpected ${String(err)}`);
        assert.ok(err.message.startsWith('env/app.yaml'), err.message);
        assert.ok(!err.message.includes(SECRET), 'an error never quotes content');
      }
    }),
    { numRuns: 2000 },
  );
});
