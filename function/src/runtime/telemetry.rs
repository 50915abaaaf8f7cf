//! Logging: JSON lines under Lambda (CloudWatch Logs Insights parses them),
//! compact text locally. `RUST_LOG` filters (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .without_time() // CloudWatch stamps every line
            .with_ansi(false)
            .try_init()
    } else {
        builder.compact().with_ansi(false).try_init()
    };
    // A subscriber already set (tests) is fine.
    drop(result);
}
