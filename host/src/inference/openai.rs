//! OpenAI-compatible chat/completions providers (OpenAI, Azure OpenAI's compatible
//! endpoint, vLLM, Ollama, LM Studio, ...).
//!
//! A classification asks the model for a JSON object `{"label": ..., "confidence": ...}`
//! naming one of the given labels; an answer naming no given label is an error, never a
//! guess. The confidence is the model's own estimate, clamped to 0..1 (0.5 when it gives
//! none); the other labels share the rest. A draft asks for plain text and keeps at most
//! the words asked for. The endpoint is the admin's configuration, so it may be an internal
//! address; every call ends by the provider's timeout or the execution's deadline,
//! whichever is first, and gives up when the worker is paused.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Bounds, InferenceError, Prediction, Provider};
use crate::net::HttpClient;
use crate::scope::HttpScope;

/// The largest response accepted.
const MAX_RESPONSE: u64 = 1 << 20;

fn scope(provider: &Provider) -> Result<HttpScope, InferenceError> {
    HttpScope::for_configured_url(&provider.url, MAX_RESPONSE, 0, provider.timeout_ms)
        .map(|(scope, _)| scope)
        .map_err(InferenceError::Unavailable)
}

/// Sends one chat request; returns the first choice's message text.
fn chat(
    http: &HttpClient,
    provider: &Provider,
    messages: Value,
    extra: Value,
    bounds: Bounds<'_>,
) -> Result<String, InferenceError> {
    let mut body = json!({
        "model": provider.model,
        "messages": messages,
        "temperature": 0,
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = &provider.key {
        headers.push(("authorization".to_string(), format!("Bearer {key}")));
    }
    let deadline = bounds
        .deadline
        .min(Instant::now() + Duration::from_millis(provider.timeout_ms));
    let fetched = http
        .send(
            &scope(provider)?,
            &http::Method::POST,
            &provider.url,
            &headers,
            Some(body.to_string().into_bytes()),
            deadline,
            bounds.halt,
        )
        .map_err(|e| InferenceError::Unavailable(format!("{}: {e:?}", provider.url)))?;
    if !(200..300).contains(&fetched.status) {
        let detail = String::from_utf8_lossy(&fetched.body);
        let detail: String = detail.chars().take(300).collect();
        return Err(InferenceError::Unavailable(format!(
            "{} answered {}: {detail}",
            provider.url, fetched.status
        )));
    }
    let answer: Value = serde_json::from_slice(&fetched.body).map_err(|e| {
        InferenceError::Unavailable(format!("{} answered with no JSON: {e}", provider.url))
    })?;
    answer["choices"][0]["message"]["content"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            InferenceError::Unavailable(format!(
                "{} answered without choices[0].message.content",
                provider.url
            ))
        })
}

/// Classifies `text` into one of `labels`.
pub(super) fn classify(
    http: &HttpClient,
    provider: &Provider,
    text: &str,
    labels: &[String],
    bounds: Bounds<'_>,
) -> Result<Prediction, InferenceError> {
    let listed = serde_json::to_string(labels).unwrap_or_default();
    let messages = json!([
        {
            "role": "system",
            "content": format!(
                "You classify text for a business workflow. Answer with a JSON object only: \
                 {{\"label\": one of {listed}, \"confidence\": your probability that the label \
                 is right, from 0 to 1}}."
            ),
        },
        { "role": "user", "content": text },
    ]);
    let content = chat(
        http,
        provider,
        messages,
        json!({ "response_format": { "type": "json_object" } }),
        bounds,
    )?;
    parse_classification(&content, labels)
}

/// Reads a classification answer: the JSON object asked for, or (from models that ignore
/// the format) text that is exactly one of the labels.
fn parse_classification(content: &str, labels: &[String]) -> Result<Prediction, InferenceError> {
    let trimmed = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let (said, confidence) = match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => (
            v["label"].as_str().map(str::to_string),
            v["confidence"].as_f64(),
        ),
        Err(_) => (Some(trimmed.trim_matches('"').to_string()), None),
    };
    let label = said
        .and_then(|s| labels.iter().find(|l| l.eq_ignore_ascii_case(s.trim())))
        .ok_or_else(|| {
            let shown: String = content.chars().take(200).collect();
            InferenceError::Unavailable(format!(
                "the model's answer names none of the labels: {shown}"
            ))
        })?;
    let confidence = confidence.unwrap_or(0.5).clamp(0.0, 1.0);
    let rest = (1.0 - confidence) / (labels.len() - 1).max(1) as f64;
    let mut scores: Vec<(String, f64)> = labels
        .iter()
        .map(|l| (l.clone(), if l == label { confidence } else { rest }))
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Prediction {
        label: label.clone(),
        confidence,
        scores,
    })
}

/// Drafts text for `prompt`, at most `max_words` words.
pub(super) fn draft(
    http: &HttpClient,
    provider: &Provider,
    prompt: &str,
    max_words: u32,
    bounds: Bounds<'_>,
) -> Result<String, InferenceError> {
    let messages = json!([
        {
            "role": "system",
            "content": format!(
                "You draft text for a business workflow; a person reviews it before it is sent. \
                 Answer with the text only, at most {max_words} words."
            ),
        },
        { "role": "user", "content": prompt },
    ]);
    // Tokens run a little over words; the words are cut to the limit afterwards.
    let content = chat(
        http,
        provider,
        messages,
        json!({ "max_tokens": max_words.saturating_mul(2).max(16) }),
        bounds,
    )?;
    Ok(content
        .split_whitespace()
        .take(max_words as usize)
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["billing", "technical", "account"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn answers_must_name_a_given_label() {
        let p = parse_classification(r#"{"label": "Technical", "confidence": 0.9}"#, &labels())
            .unwrap();
        assert_eq!(p.label, "technical");
        assert!((p.confidence - 0.9).abs() < 1e-9);
        assert!((p.scores.iter().map(|s| s.1).sum::<f64>() - 1.0).abs() < 1e-9);
        let fenced =
            parse_classification("```json\n{\"label\":\"account\"}\n```", &labels()).unwrap();
        assert_eq!((fenced.label.as_str(), fenced.confidence), ("account", 0.5));
        assert_eq!(
            parse_classification("billing", &labels()).unwrap().label,
            "billing"
        );
        let clamped = parse_classification(r#"{"label":"billing","confidence":7}"#, &labels());
        assert_eq!(clamped.unwrap().confidence, 1.0);
        for bad in [r#"{"label": "sales"}"#, "I think it is about money", "{}"] {
            assert!(parse_classification(bad, &labels()).is_err(), "{bad}");
        }
    }
}
