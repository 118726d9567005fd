//! Process-wide metrics, exported in Prometheus text format at `/metrics` by the `metrics` crate's
//! Prometheus exporter (`metrics-exporter-prometheus`, the recorder only: we serve the text
//! ourselves). Every family is described here once (`# HELP`, `# TYPE`); durations are
//! histograms in seconds with [`BUCKETS`]. Labels take values from small fixed sets (routes as
//! the router names them, kinds, outcomes) or from a [`BoundedLabel`] (GraphQL operation names,
//! WeChat errcodes): never user ids, openids or raw paths.

pub mod apps;
mod gauges;
mod labels;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use gauges::set_gauges;
pub use labels::BoundedLabel;

/// Histogram buckets (seconds): 1 ms to 30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process; later calls return the same handle). Until it is
/// installed, nothing is recorded: [`crate::app::App::build`] installs it first.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics stays empty");
        }
        describe();
        // The exporter keeps each histogram sample until upkeep folds it into the buckets:
        // without a scrape, memory would grow with every request. One thread folds them every
        // few seconds whoever scrapes (a thread, not a task: it outlives any one runtime).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "metrics: no upkeep thread; histograms fold only when scraped");
        }
        handle
    })
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The metrics in Prometheus text format.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

/// The sum of a counter (or a histogram's `_count`) over every label set whose labels contain
/// `label_filter`, read from the rendered text: how the benches count calls.
pub fn total(name: &str, label_filter: &str) -> u64 {
    render()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            let labels = if labels.is_empty() {
                ""
            } else {
                labels.strip_prefix('{')?.strip_suffix('}')?
            };
            labels
                .contains(label_filter)
                .then(|| value.parse::<f64>().ok())?
        })
        .sum::<f64>() as u64
}

fn describe() {
    describe_histogram!(
        "wechat_identity_http_server_request_duration_seconds",
        Unit::Seconds,
        "HTTP requests by method, route (as the router names it) and status, from the first byte \
         of the request to the answer's head"
    );
    describe_histogram!(
        "wechat_identity_graphql_operation_duration_seconds",
        Unit::Seconds,
        "GraphQL operations by operation name (the first 100 distinct names, then `other`; \
         `anonymous` without one) and type"
    );
    describe_histogram!(
        "wechat_identity_login_duration_seconds",
        Unit::Seconds,
        "Login attempts by kind and outcome (ok, error)"
    );
    describe_counter!(
        "wechat_identity_wechat_calls_total",
        "Calls to WeChat's API by endpoint, outcome and errcode (0: answered without one; \
         transport, http, malformed: failed without one; the first 50 distinct codes, then other)"
    );
    describe_histogram!(
        "wechat_identity_wechat_call_duration_seconds",
        Unit::Seconds,
        "Calls to WeChat's API by endpoint and outcome"
    );
    describe_counter!(
        "wechat_identity_wechat_token_refreshes_total",
        "Refreshes of an app's shared access token or JS-SDK ticket by kind and outcome"
    );
    describe_counter!(
        "wechat_identity_graphql_compiled_reads_total",
        "Hot reads by root field and the path that answered them: compiled (one SQL statement \
         built the JSON) or resolvers (the selection holds a field the compiled path does not \
         know, or graphql.compiled_reads is off)"
    );
    describe_counter!(
        "wechat_identity_merges_total",
        "Merges of two users by reason"
    );
    describe_counter!(
        "wechat_identity_db_transactions_total",
        "Database transactions by outcome (commit, rollback, retry)"
    );
    describe_counter!(
        "wechat_identity_jobs_total",
        "Runs of background jobs by kind and outcome"
    );
    describe_counter!(
        "wechat_identity_messages_total",
        "Messages to users by how their send ended (sent, failed, ...)"
    );
    describe_counter!(
        "wechat_identity_event_deliveries_total",
        "Attempts to deliver a user event to an endpoint by outcome (delivered, retry, failed)"
    );
    describe_counter!(
        "wechat_identity_rate_limit_refusals_total",
        "Requests refused by a rate limit, by limit (as the configuration names it)"
    );
    describe_counter!(
        "wechat_identity_rate_limit_redis_errors_total",
        "Rate-limit checks that could not reach Redis in time (each is followed by 5 s on this \
         instance's own buckets, which are not counted here)"
    );
    describe_gauge!(
        "wechat_identity_rate_limit_redis_up",
        "1 while rate limits are kept in Redis, 0 while this instance falls back to its own \
         buckets (absent without rate_limits.redis_url, and until the first check asks Redis)"
    );
    gauges::describe();
}

/// Counts one call to WeChat's API and how long it took.
pub fn wechat_call(report: &wechat_client::CallReport) {
    static ERRCODES: BoundedLabel = BoundedLabel::new(50);
    let errcode = match report.errcode {
        Some(code) => ERRCODES.label(&code.to_string()),
        None => report.failure.unwrap_or("0").to_owned(),
    };
    let (endpoint, outcome) = (report.endpoint, report.outcome);
    counter!("wechat_identity_wechat_calls_total", "endpoint" => endpoint, "outcome" => outcome, "errcode" => errcode)
        .increment(1);
    histogram!("wechat_identity_wechat_call_duration_seconds", "endpoint" => endpoint, "outcome" => outcome)
        .record(report.elapsed.as_secs_f64());
}

/// Records one login attempt of `kind` by how it ended, and how long it took.
pub fn login(kind: &'static str, outcome: &'static str, elapsed: Duration) {
    histogram!("wechat_identity_login_duration_seconds", "kind" => kind, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// Records one HTTP request.
pub fn http_request(method: &'static str, route: String, status: u16, elapsed: Duration) {
    histogram!(
        "wechat_identity_http_server_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// Records one GraphQL operation (its name already bounded).
pub fn graphql_operation(name: String, kind: &'static str, elapsed: Duration) {
    histogram!(
        "wechat_identity_graphql_operation_duration_seconds",
        "operation_name" => name,
        "operation_type" => kind
    )
    .record(elapsed.as_secs_f64());
}

/// Counts one refresh of an app's shared WeChat credential (`access_token`, `jsapi_ticket`).
pub fn token_refresh(kind: &'static str, outcome: &'static str) {
    counter!("wechat_identity_wechat_token_refreshes_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// Counts one hot read (`field`: its root field) by the path that answers it.
pub fn compiled_read(field: &str, compiled: bool) {
    const FIELDS: &[&str] = &[
        "me",
        "user",
        "userByUnionid",
        "users",
        "usersByIds",
        "node",
        "nodes",
        "_entities",
    ];
    let field = FIELDS
        .iter()
        .find(|f| **f == field)
        .copied()
        .unwrap_or("other");
    let path = if compiled { "compiled" } else { "resolvers" };
    counter!("wechat_identity_graphql_compiled_reads_total", "field" => field, "path" => path)
        .increment(1);
}

/// Counts one merge of two users.
pub fn merge(reason: &'static str) {
    counter!("wechat_identity_merges_total", "reason" => reason).increment(1);
}

/// Counts one attempt to deliver a user event to an endpoint, by how it ended (`delivered`,
/// `retry`, `failed`: given up).
pub fn event_delivery(outcome: &'static str) {
    counter!("wechat_identity_event_deliveries_total", "outcome" => outcome).increment(1);
}

/// Counts one database transaction by how it ended (`commit`, `rollback`, `retry`).
pub fn transaction(outcome: &'static str) {
    counter!("wechat_identity_db_transactions_total", "outcome" => outcome).increment(1);
}

/// Counts one run of a background job by how it ended (`completed`, `rearmed`,
/// `rescheduled`, `retry`, `failed`, `lease_lost`, ...).
pub fn job(kind: &str, outcome: &'static str) {
    counter!("wechat_identity_jobs_total", "kind" => kind.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Counts `n` messages to users by how their sends ended (`sent`, `failed`, `uncertain`, ...),
/// when that is written (a write retried with its transaction counts again).
pub fn message(outcome: &'static str, n: u64) {
    if n > 0 {
        counter!("wechat_identity_messages_total", "outcome" => outcome).increment(n);
    }
}

/// Counts one refusal by the rate limit named `limit` (`rate_limits.login.per_ip`).
pub fn rate_limit_refusal(limit: &str) {
    counter!("wechat_identity_rate_limit_refusals_total", "limit" => limit.to_owned()).increment(1);
}

/// Whether rate limits are being kept in Redis right now.
pub fn rate_limit_redis(up: bool) {
    metrics::gauge!("wechat_identity_rate_limit_redis_up").set(if up { 1.0 } else { 0.0 });
    if !up {
        counter!("wechat_identity_rate_limit_redis_errors_total").increment(1);
    }
}
