//! The one rule for a missing component (node, Chromium, chromedriver, the
//! control plane): locally a test skips with a `SKIP` line; under CI it
//! fails, so a green CI run never hides a test that did not run.

/// Whether this is a CI run: `CI=true` (any case) or `CI=1`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether a test may go on without `component`. Returns `true` when it is
/// available; otherwise prints a `SKIP` line and returns `false` — unless
/// under CI (see [`in_ci`]), where a missing component is a failure and
/// this panics.
pub fn require(component: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!("{component} is required (CI=true) but is not available");
    }
    eprintln!("SKIP: {component} is not available; test skipped (under CI=true this fails)");
    false
}
