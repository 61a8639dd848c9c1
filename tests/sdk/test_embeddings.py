"""Embeddings through the official SDKs and the libraries people use, against an embedding
model of each upstream kind: `text-embedding-3-small` (OpenAI kind) and `gemini-embedding-001`
(Gemini kind).

- `openai` `embeddings.create`: floats, the SDK's default (base64, decoded by the SDK), list
  input, `dimensions`;
- `google-genai` `client.models.embed_content` (always `:batchEmbedContents`), on `/v1` and
  `/v1beta`, with `output_dimensionality` and `task_type`;
- LangChain `OpenAIEmbeddings`: by default it tokenises with tiktoken and sends token arrays,
  which reach an OpenAI-kind upstream unchanged and are refused for a Gemini-kind one; with
  `check_embedding_ctx_length=False` it sends strings, which every model takes;
- the Vercel AI SDK's `embed` / `embedMany` (tests/clients/embed.test.mjs).
"""

import math

import openai
import pytest
from google import genai
from google.genai import types

from conftest import needs_node_clients, run_node_tests

OPENAI_KIND = "text-embedding-3-small"
GEMINI_KIND = "gemini-embedding-001"
MODELS = [OPENAI_KIND, GEMINI_KIND]
# The emulator's default lengths: 8 for OpenAI, 3072 (gemini-embedding-001's) for Gemini.
DEFAULT_DIMS = {OPENAI_KIND: 8, GEMINI_KIND: 3072}


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_openai_embeddings_float_base64_list_and_dimensions(oai, model):
    floats = oai.embeddings.create(model=model, input="red apple", encoding_format="float")
    assert floats.object == "list" and floats.model == model
    vec = floats.data[0].embedding
    assert len(vec) == DEFAULT_DIMS[model]
    assert floats.usage.prompt_tokens > 0 and floats.usage.total_tokens == floats.usage.prompt_tokens

    # The SDK's default asks for base64 and decodes it: the same vector at f32 precision.
    default = oai.embeddings.create(model=model, input="red apple")
    assert close(default.data[0].embedding, vec)

    texts = ["red apple", "green pear", "red apple"]
    many = oai.embeddings.create(model=model, input=texts)
    assert [d.index for d in many.data] == [0, 1, 2]
    assert close(many.data[0].embedding, vec) and close(many.data[2].embedding, vec)
    assert not close(many.data[1].embedding, vec)

    short = oai.embeddings.create(model=model, input=texts, dimensions=16)
    for d in short.data:
        assert len(d.embedding) == 16
        assert abs(norm(d.embedding) - 1.0) < 1e-4, "shortened vectors are unit vectors"


def test_openai_errors_name_the_problem(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.embeddings.create(model=OPENAI_KIND, input="")
    assert "'$.input' is invalid" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        oai.embeddings.create(model="gpt-4o-mini", input="x")
    assert "gpt-4o-mini" in e.value.message and "chat model" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model=GEMINI_KIND, messages=[{"role": "user", "content": "hi"}])
    assert GEMINI_KIND in e.value.message and "embedding model" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        oai.embeddings.create(model=GEMINI_KIND, input=[[1, 2, 3]])
    assert e.value.param == "input" and "token input" in e.value.message


@pytest.mark.parametrize("api_version", [None, "v1beta"], ids=["v1", "v1beta"])
@pytest.mark.parametrize("model", MODELS)
def test_google_genai_embed_content(gateway, oai, model, api_version):
    opts = {"base_url": gateway.base + "/gemini"}
    if api_version:
        opts["api_version"] = api_version
    client = genai.Client(api_key=gateway.key, http_options=types.HttpOptions(**opts))
    one = client.models.embed_content(model=model, contents="red apple")
    assert len(one.embeddings) == 1
    assert len(one.embeddings[0].values) == DEFAULT_DIMS[model]

    many = client.models.embed_content(
        model=model,
        contents=["red apple", "green pear"],
        config=types.EmbedContentConfig(output_dimensionality=16, task_type="RETRIEVAL_DOCUMENT"),
    )
    assert [len(e.values) for e in many.embeddings] == [16, 16]
    assert many.embeddings[0].values != many.embeddings[1].values
    # The same text gives the same vector as the OpenAI family's, on the same model.
    same = oai.embeddings.create(model=model, input="red apple", encoding_format="float")
    assert close(one.embeddings[0].values, same.data[0].embedding)

    models = {m.name: m for m in client.models.list()}
    assert "embedContent" in models[f"models/{model}"].supported_actions


def byte_level_encoding():
    """A tiktoken encoding whose tokens are the UTF-8 bytes. LangChain tokenises with tiktoken's
    cl100k_base, whose data file tiktoken downloads at run time; the tests run offline, so this
    stands in for it. The gateway never reads token ids, so what reaches it is the same shape:
    `input` as arrays of token ids."""
    import tiktoken

    return tiktoken.Encoding(
        name="bytes",
        pat_str=r"""\S+|\s+""",
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )


@pytest.fixture
def langchain_tokens(monkeypatch):
    import tiktoken

    enc = byte_level_encoding()
    monkeypatch.setattr(tiktoken, "encoding_for_model", lambda _name: enc)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda _name: enc)
    return enc


def test_langchain_openai_embeddings_default_sends_token_arrays(gateway, oai, langchain_tokens):
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(model=OPENAI_KIND, base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)
    docs = emb.embed_documents(["red apple", "green pear"])
    assert len(docs) == 2 and len(docs[0]) == DEFAULT_DIMS[OPENAI_KIND]
    # What LangChain sent was token arrays: the vectors are those of the ids, not of the text.
    ids = [langchain_tokens.encode(t) for t in ["red apple", "green pear"]]
    by_ids = oai.embeddings.create(model=OPENAI_KIND, input=ids, encoding_format="float")
    by_text = oai.embeddings.create(model=OPENAI_KIND, input="red apple", encoding_format="float")
    assert close(docs[0], by_ids.data[0].embedding) and close(docs[1], by_ids.data[1].embedding)
    assert not close(docs[0], by_text.data[0].embedding)
    assert len(emb.embed_query("red apple")) == DEFAULT_DIMS[OPENAI_KIND]

    # A Gemini-kind model cannot take token ids: a clear 400 saying what to set.
    gem = OpenAIEmbeddings(model=GEMINI_KIND, base_url=gateway.base + "/openai/v1", api_key=gateway.key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        gem.embed_documents(["red apple"])
    assert "check_embedding_ctx_length=False" in e.value.message


@pytest.mark.parametrize("model", MODELS)
def test_langchain_openai_embeddings_with_strings(gateway, oai, model):
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(
        model=model,
        base_url=gateway.base + "/openai/v1",
        api_key=gateway.key,
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    docs = emb.embed_documents(["red apple", "green pear"])
    assert [len(d) for d in docs] == [DEFAULT_DIMS[model]] * 2
    by_text = oai.embeddings.create(model=model, input="green pear", encoding_format="float")
    assert close(docs[1], by_text.data[0].embedding)
    assert close(emb.embed_query("green pear"), by_text.data[0].embedding)


@needs_node_clients
def test_vercel_ai_sdk_embed(gateway):
    run_node_tests(gateway, "embed.test.mjs", MODELS, 2 * len(MODELS))
