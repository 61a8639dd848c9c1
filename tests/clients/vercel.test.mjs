// The Vercel AI SDK (`ai` with the default `@ai-sdk/openai` provider, which speaks the
// Responses API; and generateObject through `openai.chat`, `@ai-sdk/anthropic` and
// `@ai-sdk/google`) against a running gateway, for a model of every upstream kind. Run by
// tests/sdk/test_vercel.py, which starts the gateway and passes ANYINT_BASE, ANYINT_API_KEY
// and MODELS.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const openai = createOpenAI({
  baseURL: `${process.env.ANYINT_BASE}/openai/v1`,
  apiKey: process.env.ANYINT_API_KEY,
});
// The README's settings for the other providers.
const anthropic = createAnthropic({
  baseURL: `${process.env.ANYINT_BASE}/anthropic/v1`,
  apiKey: process.env.ANYINT_API_KEY,
});
const google = createGoogleGenerativeAI({
  baseURL: `${process.env.ANYINT_BASE}/gemini/v1beta`,
  apiKey: process.env.ANYINT_API_KEY,
});
const models = (process.env.MODELS ?? '').split(',').filter(Boolean);
const weather = z.object({ city: z.string(), degrees: z.number() });

for (const id of models) {
  test(`${id}: generateText`, async () => {
    const { text, usage } = await generateText({
      model: openai(id),
      prompt: 'Reply with exactly: AnyInt OK',
      maxRetries: 0,
    });
    assert.equal(text, 'AnyInt OK');
    assert.ok(usage.inputTokens > 0 && usage.outputTokens > 0);
  });

  test(`${id}: streamText`, async () => {
    const result = streamText({ model: openai(id), prompt: 'Reply with exactly: one two three', maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.equal(text, 'one two three');
    assert.ok((await result.usage).outputTokens > 0);
  });

  test(`${id}: a tool call and its result`, async () => {
    const { text, steps } = await generateText({
      model: openai(id),
      prompt: 'Call get_weather for Oslo',
      tools: {
        get_weather: tool({
          description: 'The current weather in a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => `3 degrees and rain in ${city}`,
        }),
      },
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    assert.ok(steps[0].toolCalls.some((c) => c.toolName === 'get_weather'));
    assert.match(text, /3 degrees and rain in/);
  });

  test(`${id}: generateObject`, async () => {
    const { object } = await generateObject({
      model: openai(id),
      schema: z.object({ city: z.string(), degrees: z.number() }),
      prompt: 'The weather in Oslo, as JSON.',
      maxRetries: 0,
    });
    assert.equal(typeof object.city, 'string');
    assert.equal(typeof object.degrees, 'number');
  });

  // generateObject through each provider family: Chat Completions, Anthropic Messages, Gemini.
  for (const [name, model] of [
    ['openai.chat', openai.chat(id)],
    ['anthropic', anthropic(id)],
    ['google', google(id)],
  ]) {
    test(`${id}: generateObject with ${name}`, async () => {
      const { object, usage } = await generateObject({
        model,
        schema: weather,
        prompt: 'The weather in Oslo, as JSON.',
        maxRetries: 0,
      });
      assert.equal(typeof object.city, 'string');
      assert.equal(typeof object.degrees, 'number');
      assert.ok(usage.inputTokens > 0);
    });
  }
}
