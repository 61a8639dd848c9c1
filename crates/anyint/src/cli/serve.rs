//! `anyint serve` and `anyint emulate`.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::config::{self, Config};

pub(super) async fn run(
    config_path: Option<PathBuf>,
    listen: Option<SocketAddr>,
    demo: bool,
) -> Result<(), String> {
    if demo {
        return run_demo(listen).await;
    }
    let Some(mut config) = super::load_config(config_path)? else {
        return Err(
            "no config: pass --config PATH, set ANYINT_CONFIG, or try `anyint serve --demo`".into(),
        );
    };
    if let Some(l) = listen {
        config.server.listen = l;
    }
    crate::telemetry::init_logging(config.server.log_format, &config.server.log_level);
    serve_until_signal(config).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

async fn serve_until_signal(config: Config) -> Result<(), String> {
    let listener = bind(config.server.listen).await?;
    let store = crate::store::redact_url(&config.store_url);
    let scheme = config.server.scheme();
    let running = crate::server::start(config, listener).await.map_err(|e| {
        let cause = e.cause.clone().unwrap_or_default();
        format!("{}: {cause}", e.message)
    })?;
    let stop = crate::server::shutdown_signal();
    tracing::info!(addr = %running.addr, store, "anyint listening");
    println!("anyint listening on {scheme}://{}", running.addr);
    stop.await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn run_demo(listen: Option<SocketAddr>) -> Result<(), String> {
    let emulator_listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let emulator_addr = emulator_listener.local_addr().map_err(|e| e.to_string())?;
    let opts = anyint_emulator::Options {
        api_key: Some(config::demo::DEMO_UPSTREAM_KEY.to_owned()),
    };
    tokio::spawn(async move {
        if let Err(e) =
            anyint_emulator::serve(emulator_listener, opts, std::future::pending()).await
        {
            tracing::error!(error = %e, "emulator stopped");
        }
    });
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let mut config = config::demo_config(
        &format!("http://{emulator_addr}"),
        listen,
        &config::process_env,
    )
    .map_err(|e| e.to_string())?;
    // The demo always has an admin token, so the console and admin API work in the first
    // minute: the operator's own (ANYINT_ADMIN_TOKEN), else a random one printed below.
    let generated = config.server.admin_token.is_none().then(|| {
        let token = format!("adm_{}", hex::encode(crate::auth::random_bytes::<24>()));
        config.server.admin_token = Some(config::Secret::new(token.clone()));
        token
    });
    crate::telemetry::init_logging(config.server.log_format, &config.server.log_level);
    let store = crate::store::open(&config.store_url)
        .await
        .map_err(|e| e.to_string())?;
    let (_, key) = crate::auth::issue_key(
        store.as_ref(),
        "demo",
        "demo",
        None,
        crate::store::KeyLimits::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let listener = bind(config.server.listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let running = crate::server::start_with_store(config, store, listener)
        .await
        .map_err(|e| e.message)?;
    let stop = crate::server::shutdown_signal();
    println!(
        "anyint demo gateway on http://{addr} (emulated provider at http://{emulator_addr}, store sqlite://data/anyint.db)\n\n\
         Demo key (shown once): {key}\n\n\
         export ANYINT_API_KEY={key}\n\
         curl -s http://{addr}/openai/v1/models -H \"Authorization: Bearer $ANYINT_API_KEY\"\n\
         curl -s http://{addr}/openai/v1/chat/completions -H \"Authorization: Bearer $ANYINT_API_KEY\" \\\n  \
           -H 'Content-Type: application/json' \\\n  \
           -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Reply with exactly: AnyInt OK\"}}]}}'\n\
         curl -sN http://{addr}/openai/v1/chat/completions -H \"Authorization: Bearer $ANYINT_API_KEY\" \\\n  \
           -H 'Content-Type: application/json' \\\n  \
           -d '{{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Say hello\"}}]}}'\n\
         curl -s http://{addr}/anthropic/v1/messages -H \"x-api-key: $ANYINT_API_KEY\" -H 'anthropic-version: 2023-06-01' \\\n  \
           -H 'Content-Type: application/json' \\\n  \
           -d '{{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":256,\"messages\":[{{\"role\":\"user\",\"content\":\"Reply with exactly: AnyInt OK\"}}]}}'\n\
         curl -sN \"http://{addr}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse\" -H \"x-goog-api-key: $ANYINT_API_KEY\" \\\n  \
           -H 'Content-Type: application/json' -d '{{\"contents\":[{{\"role\":\"user\",\"parts\":[{{\"text\":\"Say hello\"}}]}}]}}'\n\
         curl -s http://{addr}/dashscope/v1/services/aigc/video-generation/video-synthesis -H \"Authorization: Bearer $ANYINT_API_KEY\" \\\n  \
           -H 'Content-Type: application/json' -d '{{\"model\":\"wan2.2-t2v-plus\",\"input\":{{\"prompt\":\"a cat runs on grass\"}}}}'\n\n\
         The whole integration checklist: anyint verify --base-url http://{addr}\n\n\
         Console: http://{addr}/console/ (sign in with the admin token)\n\
         Admin token: {}\n\
         Admin API: http://{addr}/admin/v1/keys -H \"Authorization: Bearer <admin token>\"\n\
         Press ctrl-c to stop.",
        generated
            .as_deref()
            .unwrap_or("the value of ANYINT_ADMIN_TOKEN")
    );
    stop.await;
    running.shutdown().await;
    Ok(())
}

pub(super) async fn emulate(listen: SocketAddr, api_key_env: Option<String>) -> Result<(), String> {
    crate::telemetry::init_logging(config::LogFormat::Text, "info");
    let api_key = match api_key_env {
        Some(var) => Some(
            config::process_env(&var)
                .ok_or_else(|| format!("environment variable {var} is not set"))?,
        ),
        None => None,
    };
    let listener = bind(listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = crate::server::shutdown_signal();
    println!("anyint emulator on http://{addr} (OpenAI-compatible at http://{addr}/v1)");
    anyint_emulator::serve(listener, anyint_emulator::Options { api_key }, stop)
        .await
        .map_err(|e| e.to_string())
}
