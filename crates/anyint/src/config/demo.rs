//! The `--demo` configuration: the built-in emulator as the only provider, a SQLite file under
//! `./data/`, and a handful of models. Built as TOML text so it passes the same validation as a
//! file an operator writes.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{Config, EnvLookup, Error};

/// The upstream key the demo gateway sends to its in-process emulator.
pub const DEMO_UPSTREAM_KEY: &str = "demo-upstream-key";

/// Models the demo serves: (id, display name, owner, demo provider).
const DEMO_MODELS: &[(&str, &str, &str, &str)] = &[
    (
        "gpt-4o-mini",
        "GPT-4o mini (emulated)",
        "openai",
        "emulator-openai",
    ),
    ("gpt-4o", "GPT-4o (emulated)", "openai", "emulator-openai"),
    ("gpt-4.1", "GPT-4.1 (emulated)", "openai", "emulator-openai"),
    ("o4-mini", "o4-mini (emulated)", "openai", "emulator-openai"),
    (
        "gpt-5",
        "GPT-5 (emulated, native Responses API)",
        "openai",
        "emulator-openai-responses",
    ),
    (
        "claude-sonnet-4-5",
        "Claude Sonnet 4.5 (emulated)",
        "anthropic",
        "emulator-anthropic",
    ),
    (
        "claude-haiku-4-5",
        "Claude Haiku 4.5 (emulated)",
        "anthropic",
        "emulator-anthropic",
    ),
    (
        "gemini-2.5-flash",
        "Gemini 2.5 Flash (emulated)",
        "google",
        "emulator-gemini",
    ),
    (
        "gemini-2.5-pro",
        "Gemini 2.5 Pro (emulated)",
        "google",
        "emulator-gemini",
    ),
];

/// The demo config, with the emulator at `emulator_base` (e.g. `http://127.0.0.1:4000`). The
/// one emulator stands in for every provider: OpenAI (Chat Completions, and the Responses API
/// for `gpt-5`), Anthropic and Gemini. The Anthropic and Gemini providers serve hosted web
/// search (`web_search = true`; the emulator searches when the last user text says "search").
/// Two embedding models, `text-embedding-3-small` (OpenAI kind) and `gemini-embedding-001`
/// (Gemini kind), serve embeddings in both families.
pub fn demo_config(
    emulator_base: &str,
    listen: SocketAddr,
    env: EnvLookup<'_>,
) -> Result<Config, Error> {
    let mut text =
        format!("[server]\nlisten = \"{listen}\"\n\n[store]\nurl = \"sqlite://data/anyint.db\"\n");
    for (name, kind, base, web_search) in [
        (
            "emulator-openai",
            "openai",
            format!("{emulator_base}/v1"),
            false,
        ),
        (
            "emulator-anthropic",
            "anthropic",
            emulator_base.to_owned(),
            true,
        ),
        (
            "emulator-gemini",
            "gemini",
            format!("{emulator_base}/v1beta"),
            true,
        ),
    ] {
        let _ = write!(
            text,
            "\n[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{base}\"\napi_key = \"{DEMO_UPSTREAM_KEY}\"\n"
        );
        if web_search {
            text.push_str("web_search = true\n");
        }
    }
    // The same emulator as an OpenAI upstream with the Responses API, so Responses clients
    // pass through untouched to `gpt-5`.
    let _ = write!(
        text,
        "\n[[providers]]\nname = \"emulator-openai-responses\"\nkind = \"openai\"\napi = \"responses\"\nbase_url = \"{emulator_base}/v1\"\napi_key = \"{DEMO_UPSTREAM_KEY}\"\n"
    );
    for (id, name, owner, provider) in DEMO_MODELS {
        let _ = write!(
            text,
            "\n[[models]]\nid = \"{id}\"\ndisplay_name = \"{name}\"\nowned_by = \"{owner}\"\n\
             routes = [{{ provider = \"{provider}\", upstream_model = \"{id}\" }}]\n"
        );
    }
    // Embedding models, one per upstream kind, priced per million input tokens as their
    // providers list them.
    for (id, name, owner, provider, input_price) in [
        (
            "text-embedding-3-small",
            "text-embedding-3-small (emulated)",
            "openai",
            "emulator-openai",
            20_000,
        ),
        (
            "gemini-embedding-001",
            "Gemini Embedding 001 (emulated)",
            "google",
            "emulator-gemini",
            150_000,
        ),
    ] {
        let _ = write!(
            text,
            "\n[[models]]\nid = \"{id}\"\napi = \"embedding\"\ndisplay_name = \"{name}\"\nowned_by = \"{owner}\"\n\
             routes = [{{ provider = \"{provider}\", upstream_model = \"{id}\" }}]\nprice = {{ input = {input_price} }}\n"
        );
    }
    text.push_str(&demo_tasks(emulator_base));
    Config::parse(&text, "<demo>", env)
}

/// The demo's task providers and models (the same emulator, speaking DashScope and the music
/// reseller API), and callbacks to loopback allowed so a local receiver can be tried out.
fn demo_tasks(emulator_base: &str) -> String {
    let mut text = String::new();
    for (name, kind, base) in [
        (
            "emulator-dashscope",
            "dashscope",
            format!("{emulator_base}/api/v1"),
        ),
        ("emulator-music", "music", emulator_base.to_owned()),
    ] {
        let _ = write!(
            text,
            "\n[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{base}\"\napi_key = \"{DEMO_UPSTREAM_KEY}\"\n"
        );
    }
    for (id, name, owner, provider, price) in [
        (
            "wan2.2-t2v-plus",
            "Wan 2.2 text-to-video (emulated)",
            "alibaba",
            "emulator-dashscope",
            "per_video_second = 100000",
        ),
        (
            "wan2.5-i2v-preview",
            "Wan 2.5 image-to-video (emulated)",
            "alibaba",
            "emulator-dashscope",
            "per_video_second = 100000",
        ),
        (
            "wan2.2-t2i-flash",
            "Wan 2.2 text-to-image (emulated)",
            "alibaba",
            "emulator-dashscope",
            "per_image = 20000",
        ),
        (
            "V4_5",
            "Suno V4.5 (emulated)",
            "suno",
            "emulator-music",
            "per_song = 50000",
        ),
        (
            "V5",
            "Suno V5 (emulated)",
            "suno",
            "emulator-music",
            "per_song = 80000",
        ),
    ] {
        let _ = write!(
            text,
            "\n[[models]]\nid = \"{id}\"\ndisplay_name = \"{name}\"\nowned_by = \"{owner}\"\n\
             routes = [{{ provider = \"{provider}\", upstream_model = \"{id}\" }}]\nprice = {{ {price} }}\n"
        );
    }
    text.push_str(
        "\n[tasks]\npoll_interval_ms = 1000\ncallback_allow_networks = [\"127.0.0.0/8\", \"::1/128\"]\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_serves_web_search_on_its_anthropic_and_gemini_providers() {
        let c = demo_config(
            "http://127.0.0.1:4000",
            "127.0.0.1:8080".parse().unwrap(),
            &|_| None,
        )
        .unwrap();
        let searching: Vec<&str> = c
            .providers
            .iter()
            .filter(|p| p.web_search)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(searching, ["emulator-anthropic", "emulator-gemini"]);
    }

    #[test]
    fn the_demo_has_an_embedding_model_of_each_upstream_kind() {
        let c = demo_config(
            "http://127.0.0.1:4000",
            "127.0.0.1:8080".parse().unwrap(),
            &|_| None,
        )
        .unwrap();
        let embedding: Vec<(&str, &str)> = c
            .models
            .iter()
            .filter(|m| m.api == crate::config::ModelApi::Embedding)
            .map(|m| {
                let p = &c.providers[m.routes[0].provider];
                (m.id.as_str(), p.kind.as_str())
            })
            .collect();
        assert_eq!(
            embedding,
            [
                ("text-embedding-3-small", "openai"),
                ("gemini-embedding-001", "gemini")
            ]
        );
    }
}
