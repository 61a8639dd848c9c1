// The official Node SDKs, `openai` (Chat Completions) and `@anthropic-ai/sdk` (Messages),
// against a running gateway with only the base URL and key changed: a basic call and a stream
// each, for a model of every upstream kind. Run by tests/sdk/test_node_sdks.py, which starts
// the gateway and passes ANYINT_BASE, ANYINT_API_KEY and MODELS.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const base = process.env.ANYINT_BASE;
const apiKey = process.env.ANYINT_API_KEY;
const openai = new OpenAI({ baseURL: `${base}/openai/v1`, apiKey, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: `${base}/anthropic`, apiKey, maxRetries: 0 });
const models = (process.env.MODELS ?? '').split(',').filter(Boolean);

for (const id of models) {
  test(`openai ${id}: chat.completions.create`, async () => {
    const r = await openai.chat.completions.create({
      model: id,
      messages: [{ role: 'user', content: 'Reply with exactly: AnyInt OK' }],
    });
    assert.equal(r.choices[0].message.content, 'AnyInt OK');
    assert.ok(r.usage.prompt_tokens > 0);
  });

  test(`openai ${id}: stream`, async () => {
    const stream = await openai.chat.completions.create({
      model: id,
      messages: [{ role: 'user', content: 'Reply with exactly: one two three' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, 'one two three');
    assert.ok(usage.completion_tokens > 0);
  });

  test(`anthropic ${id}: messages.create`, async () => {
    const m = await anthropic.messages.create({
      model: id,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Reply with exactly: AnyInt OK' }],
    });
    assert.equal(m.content[0].text, 'AnyInt OK');
    assert.equal(m.stop_reason, 'end_turn');
  });

  test(`anthropic ${id}: messages.stream`, async () => {
    const stream = anthropic.messages.stream({
      model: id,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Reply with exactly: one two three' }],
    });
    let text = '';
    stream.on('text', (delta) => {
      text += delta;
    });
    const final = await stream.finalMessage();
    assert.equal(text, 'one two three');
    assert.ok(final.usage.output_tokens > 0);
  });
}
