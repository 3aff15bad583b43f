//! What the redirector counts: requests by how they were answered; responses by rule,
//! line and status class; the pass-through's latency; errors by kind.
//!
//! This module owns the redirector's counters and their families in `/metrics`. Counting
//! a request is a few relaxed atomic increments into arrays allocated when the rules were
//! built (one per rule, sized by the number of lines), and one histogram observation for a
//! pass-through: no lock, no allocation. A configuration reload that keeps a rule keeps
//! its counters ([`RedirectMetrics::rule_counters`]). Connections and TLS handshakes are
//! the front-end's ([`crate::http::metrics`]); the pass-through's upstream errors are
//! counted by its [`ProxyMetrics`], shared here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::exposition::Exposition;
use crate::http::metrics::{CODE_CLASSES, Histogram, code_class};
use crate::proxy::ProxyMetrics;

/// How the redirector answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Sent to the rule's target (the client's line is one the rule lists).
    Redirected,
    /// Passed through to the origin (a covered host, a client in no listed line).
    PassedThrough,
    /// Answered by the redirector itself: `/healthz`, a host no rule covers (421), a
    /// request it cannot read (400).
    Local,
}

impl Outcome {
    /// Every outcome, in the order of their counters.
    pub(crate) const ALL: [Outcome; 3] =
        [Outcome::Redirected, Outcome::PassedThrough, Outcome::Local];

    /// The `outcome` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Redirected => "redirected",
            Outcome::PassedThrough => "passed_through",
            Outcome::Local => "local",
        }
    }
}

/// An answer the redirector gave because the request could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// 400: no host, a malformed host, or a target that cannot go into a `Location`.
    BadRequest,
    /// 421: a host no rule covers.
    Misdirected,
}

/// One rule's responses, by the client's line and the status class.
#[derive(Debug)]
pub(crate) struct RuleCounters {
    /// The rule's `from`: the `rule` label.
    pub from: String,
    lines: usize,
    /// `[line][code class]`, flattened.
    responses: Box<[AtomicU64]>,
}

impl RuleCounters {
    fn new(from: String, lines: usize) -> RuleCounters {
        RuleCounters {
            from,
            lines,
            responses: (0..lines * CODE_CLASSES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// A response with `status` to a client in line number `line`.
    pub(crate) fn count(&self, line: usize, status: u16) {
        if let Some(c) = self
            .responses
            .get(line * CODE_CLASSES.len() + code_class(status))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The redirector's counters, shared by all its listeners and kept across configuration
/// reloads.
#[derive(Debug, Default)]
pub(crate) struct RedirectMetrics {
    requests: [AtomicU64; Outcome::ALL.len()],
    /// Responses no rule covered (`/healthz`, 400, 421), by status class.
    local: [AtomicU64; CODE_CLASSES.len()],
    errors: [AtomicU64; 2],
    /// The rules serving now, in configuration order.
    rules: Mutex<Vec<Arc<RuleCounters>>>,
    /// The pass-through's counters (upstream errors among them).
    pub(crate) upstream: Arc<ProxyMetrics>,
}

impl RedirectMetrics {
    pub(crate) fn count(&self, outcome: Outcome) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered with `outcome` since start.
    pub(crate) fn requests(&self, outcome: Outcome) -> u64 {
        self.requests[outcome as usize].load(Ordering::Relaxed)
    }

    /// A response made without a rule.
    pub(crate) fn local(&self, status: u16) {
        self.local[code_class(status)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, e: RequestError) {
        self.errors[e as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters of rules `from` (in configuration order) with `lines` lines: those of
    /// the rules already counted are kept, so a reload does not reset a rule it keeps.
    /// They become the rules `/metrics` shows.
    pub(crate) fn rule_counters<'a>(
        &self,
        from: impl Iterator<Item = &'a str>,
        lines: usize,
    ) -> Vec<Arc<RuleCounters>> {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let next: Vec<Arc<RuleCounters>> = from
            .map(|f| {
                rules
                    .iter()
                    .find(|r| r.from == f && r.lines == lines)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(RuleCounters::new(f.to_string(), lines)))
            })
            .collect();
        rules.clone_from(&next);
        next
    }

    /// The redirector's families; `line_name` names line number `i`.
    pub(crate) fn render(
        this: Option<&Self>,
        out: &mut Exposition,
        line_name: &dyn Fn(usize) -> String,
    ) {
        const REQUESTS: &str = "geoline_redirect_requests_total";
        out.family(
            REQUESTS,
            "counter",
            "Requests the redirector answered, by outcome: redirected, passed through to the origin, or answered locally (/healthz, 400, 421).",
        );
        for outcome in Outcome::ALL {
            let n = this.map_or(0, |m| m.requests(outcome));
            out.sample(REQUESTS, &[("outcome", outcome.label())], n as f64);
        }
        const RESPONSES: &str = "geoline_redirect_http_responses_total";
        out.family(
            RESPONSES,
            "counter",
            "Responses by rule (its from), client line and status class; rule and line \"-\" for requests no rule covers.",
        );
        if let Some(m) = this {
            let rules = m
                .rules
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for rule in &rules {
                for line in 0..rule.lines {
                    let name = line_name(line);
                    for (class, code) in CODE_CLASSES.iter().enumerate() {
                        let n = rule.responses[line * CODE_CLASSES.len() + class]
                            .load(Ordering::Relaxed);
                        let labels = [
                            ("rule", rule.from.as_str()),
                            ("line", &name),
                            ("code", code),
                        ];
                        out.sample(RESPONSES, &labels, n as f64);
                    }
                }
            }
        }
        for (class, code) in CODE_CLASSES.iter().enumerate() {
            let n = this.map_or(0, |m| m.local[class].load(Ordering::Relaxed));
            out.sample(
                RESPONSES,
                &[("rule", "-"), ("line", "-"), ("code", code)],
                n as f64,
            );
        }
        const LATENCY: &str = "geoline_redirect_pass_through_duration_seconds";
        out.family(
            LATENCY,
            "histogram",
            "Passed-through requests, from the request to the origin's response head (or the redirector's 502/504).",
        );
        match this {
            Some(m) => m.upstream.latency.render(out, LATENCY, &[]),
            None => Histogram::default().render(out, LATENCY, &[]),
        }
        const ERRORS: &str = "geoline_redirect_errors_total";
        out.family(
            ERRORS,
            "counter",
            "Requests the redirector could not serve, by kind: bad_request (400), misdirected (421: no rule covers the host), upstream_connect, upstream_response, upstream_timeout (502/504 of the pass-through).",
        );
        let upstream = this.map(|m| m.upstream.snapshot()).unwrap_or_default();
        let local =
            |e: RequestError| this.map_or(0, |m| m.errors[e as usize].load(Ordering::Relaxed));
        for (kind, n) in [
            ("bad_request", local(RequestError::BadRequest)),
            ("misdirected", local(RequestError::Misdirected)),
            ("upstream_connect", upstream.upstream_connect),
            ("upstream_response", upstream.upstream_response),
            ("upstream_timeout", upstream.gateway_timeout),
        ] {
            out.sample(ERRORS, &[("kind", kind)], n as f64);
        }
    }
}
