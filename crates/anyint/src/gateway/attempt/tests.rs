//! The retry loop's decisions under paused tokio time: which route comes next, how long it
//! waits, and when it gives up. No IO: the router and the search run against a config alone.

use std::time::Duration;

use tokio::time::Instant;

use super::{Failed, RetryBudget, Search};
use crate::config::Config;
use crate::router::Router;
use crate::router::balance::Rng;
use crate::router::retry::Class;

fn config(extra_routes: &str, routing: &str) -> Config {
    let text = format!(
        "[routing]\n{routing}\n\n[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key = [\"k1\", \"k2\"]\n\n\
         [[models]]\nid = \"m\"\nroutes = [{{ provider = \"p\", upstream_model = \"a\" }}{extra_routes}]\n"
    );
    Config::parse(&text, "test", &|_| None).unwrap()
}

const ROUTING: &str =
    "max_attempts = 5\nretry_budget_ms = 3000\nbackoff_base_ms = 100\nbackoff_max_ms = 400";

fn failed(idx: usize, class: Class) -> Failed {
    Failed {
        idx,
        slot: 0,
        keys: 2,
        class,
    }
}

#[tokio::test(start_paused = true)]
async fn single_route_waits_a_jittered_backoff_then_retries_it() {
    let cfg = config("", ROUTING);
    let router = Router::new(&cfg);
    let model = cfg.model("m").unwrap();
    let mut rng = Rng::new(1);
    let mut search = Search::default();
    let start = Instant::now();
    let end = start + cfg.routing.retry_budget;
    for n in 0..3u32 {
        assert_eq!(search.next(&router, model, &mut rng), Some(0));
        let before = Instant::now();
        let budget = RetryBudget {
            end,
            attempts: n + 1,
            fallbacks_left: false,
            waits: true,
            rng: &mut rng,
        };
        search
            .after_failure(
                (&cfg.routing, &router),
                model,
                failed(0, Class::Unavailable(None)),
                budget,
            )
            .await;
        let waited = before.elapsed();
        let cap = (cfg.routing.backoff_base * 2u32.pow(n)).min(cfg.routing.backoff_max);
        assert!(
            waited <= cap,
            "wait {waited:?} above cap {cap:?} at retry {n}"
        );
    }
    assert_eq!(
        search.next(&router, model, &mut rng),
        Some(0),
        "the route is offered again after each wait"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_within_the_budget_is_waited_exactly_and_beyond_it_is_not() {
    let cfg = config("", ROUTING);
    let router = Router::new(&cfg);
    let model = cfg.model("m").unwrap();
    let mut rng = Rng::new(2);
    let mut search = Search::default();
    let end = Instant::now() + cfg.routing.retry_budget;
    let before = Instant::now();
    let budget = RetryBudget {
        end,
        attempts: 1,
        fallbacks_left: false,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            failed(0, Class::Throttled(Some(Duration::from_secs(2)))),
            budget,
        )
        .await;
    assert_eq!(
        before.elapsed(),
        Duration::from_secs(2),
        "the upstream's retry-after is honoured"
    );
    assert_eq!(search.next(&router, model, &mut rng), Some(0));

    // Two seconds into a three-second budget, another two-second wait does not fit.
    let before = Instant::now();
    let budget = RetryBudget {
        end,
        attempts: 2,
        fallbacks_left: false,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            failed(0, Class::Throttled(Some(Duration::from_secs(2)))),
            budget,
        )
        .await;
    assert_eq!(before.elapsed(), Duration::ZERO, "no wait past the budget");
    assert_eq!(
        search.next(&router, model, &mut rng),
        None,
        "the request answers instead"
    );
}

#[tokio::test(start_paused = true)]
async fn another_route_or_a_fallback_comes_before_any_wait() {
    let cfg = config(", { provider = \"p\", upstream_model = \"b\" }", ROUTING);
    let router = Router::new(&cfg);
    let model = cfg.model("m").unwrap();
    let mut rng = Rng::new(3);
    let mut search = Search::default();
    let end = Instant::now() + cfg.routing.retry_budget;
    let first = search.next(&router, model, &mut rng).unwrap();
    let before = Instant::now();
    let budget = RetryBudget {
        end,
        attempts: 1,
        fallbacks_left: false,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            failed(first, Class::Unavailable(None)),
            budget,
        )
        .await;
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert_eq!(
        search.next(&router, model, &mut rng),
        Some(1 - first),
        "the other route, at once"
    );

    // The last route failing with fallback models left: move on without waiting.
    let budget = RetryBudget {
        end,
        attempts: 2,
        fallbacks_left: true,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            failed(1 - first, Class::Timeout),
            budget,
        )
        .await;
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert_eq!(search.next(&router, model, &mut rng), None);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_key_is_replaced_by_the_next_key_then_the_route_is_given_up() {
    let cfg = config("", ROUTING);
    let router = Router::new(&cfg);
    let model = cfg.model("m").unwrap();
    let mut rng = Rng::new(4);
    let mut search = Search::default();
    let end = Instant::now() + cfg.routing.retry_budget;
    let budget = RetryBudget {
        end,
        attempts: 1,
        fallbacks_left: false,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            Failed {
                idx: 0,
                slot: 0,
                keys: 2,
                class: Class::KeyRejected,
            },
            budget,
        )
        .await;
    assert_eq!(
        search.next(&router, model, &mut rng),
        Some(0),
        "same route, other key"
    );
    let states = router.state("m", 0).unwrap();
    assert_eq!(search.key_slot(states, 0, 2), 1, "the spent key is skipped");
    let budget = RetryBudget {
        end,
        attempts: 2,
        fallbacks_left: false,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            Failed {
                idx: 0,
                slot: 1,
                keys: 2,
                class: Class::QuotaExhausted,
            },
            budget,
        )
        .await;
    assert_eq!(
        search.next(&router, model, &mut rng),
        None,
        "no key left on the only route"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_cap_stops_same_route_waits() {
    let cfg = config("", ROUTING);
    let router = Router::new(&cfg);
    let model = cfg.model("m").unwrap();
    let mut rng = Rng::new(5);
    let mut search = Search::default();
    let end = Instant::now() + cfg.routing.retry_budget;
    let budget = RetryBudget {
        end,
        attempts: cfg.routing.max_attempts,
        fallbacks_left: false,
        waits: true,
        rng: &mut rng,
    };
    search
        .after_failure(
            (&cfg.routing, &router),
            model,
            failed(0, Class::Unavailable(None)),
            budget,
        )
        .await;
    assert_eq!(search.next(&router, model, &mut rng), None);
}
