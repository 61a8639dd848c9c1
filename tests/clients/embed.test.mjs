// The Vercel AI SDK's `embed` and `embedMany` through `@ai-sdk/openai` (`openai.embedding`, which
// posts floats-format requests to /embeddings) against a running gateway, for an embedding model
// of each upstream kind. Run by tests/sdk/test_embeddings.py, which starts the gateway and
// passes ANYINT_BASE, ANYINT_API_KEY and MODELS.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { embed, embedMany } from 'ai';

const openai = createOpenAI({
  baseURL: `${process.env.ANYINT_BASE}/openai/v1`,
  apiKey: process.env.ANYINT_API_KEY,
});
const models = (process.env.MODELS ?? '').split(',').filter(Boolean);

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

for (const id of models) {
  test(`${id}: embed and embedMany keep the input order`, async () => {
    const values = ['red apple', 'green pear', 'yellow banana'];
    const many = await embedMany({ model: openai.embedding(id), values, maxRetries: 0 });
    assert.equal(many.embeddings.length, 3);
    assert.ok(many.usage.tokens > 0);
    const one = await embed({ model: openai.embedding(id), value: 'green pear', maxRetries: 0 });
    assert.deepEqual(one.embedding, many.embeddings[1]);
    assert.notDeepEqual(many.embeddings[0], many.embeddings[1]);
  });

  test(`${id}: embed with dimensions gives a unit vector of that length`, async () => {
    const { embedding } = await embed({
      model: openai.embedding(id),
      value: 'red apple',
      providerOptions: { openai: { dimensions: 16 } },
      maxRetries: 0,
    });
    assert.equal(embedding.length, 16);
    assert.ok(Math.abs(norm(embedding) - 1) < 1e-4, `norm ${norm(embedding)}`);
  });
}
