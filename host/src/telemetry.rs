//! What the host process tells its operators: logs on standard error (filtered by
//! `ROSTER_LOG`, `warn` by default) and, when `[telemetry] otlp-endpoint` is set, its
//! spans exported with OpenTelemetry over OTLP/HTTP: one per execution
//! (`roster.execution`), a child per host call (`wit-bindgen import`, naming the
//! interface and function) and per store commit (`roster.store.commit`).
//!
//! Only spans are exported, never log events: what a worker passes to a host call (record
//! values, message bodies) is not in a trace.

use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The process's telemetry; dropping it sends the spans not sent yet.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// The URL spans are posted to, from an `otlp-endpoint` (`http://host:port`, with or
/// without the `/v1/traces` path); plain HTTP only.
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return Err(format!(
            "otlp-endpoint `{endpoint}`: give http://HOST:PORT (an OpenTelemetry collector's \
             OTLP/HTTP receiver; TLS to a remote backend is the collector's job)"
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("otlp-endpoint `{endpoint}`: no host"));
    }
    Ok(if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{endpoint}/v1/traces")
    })
}

impl Telemetry {
    /// Installs the process's subscriber: logs, and spans exported to `otlp_endpoint`
    /// when one is given. Call once, early, outside any async runtime.
    pub fn init(otlp_endpoint: Option<&str>) -> Result<Telemetry, String> {
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(
                tracing_subscriber::EnvFilter::try_from_env("ROSTER_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            );
        let Some(endpoint) = otlp_endpoint else {
            tracing_subscriber::registry().with(logs).init();
            return Ok(Telemetry { provider: None });
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(traces_url(endpoint)?)
            .with_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("otlp-endpoint `{endpoint}`: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("roster")
                    .build(),
            )
            .build();
        // Spans of the host's own code, at every level; no events.
        let spans = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("roster"))
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("roster_host")
            }));
        tracing_subscriber::registry().with(logs).with(spans).init();
        Ok(Telemetry {
            provider: Some(provider),
        })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("sending the last spans: {e}");
        }
    }
}

/// The trace id of `span` (32 hex digits), when spans are exported.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let id = span.context().span().span_context().trace_id();
    (id != TraceId::INVALID).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_of_the_traces_path() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces/").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert!(traces_url("https://api.vendor.example").is_err());
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("http://").is_err());
    }
}
