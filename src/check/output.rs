//! `authgate check --output text|json|junit`: the problems found, for a
//! person, for a program, or for a CI system's test report.

use std::fmt::Write;

use serde_json::json;

use super::{Problem, Severity};

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// One line per problem, and a summary on standard error.
    #[default]
    Text,
    /// `{"errors": N, "warnings": N, "problems": [{file, resource, severity, message}]}`.
    Json,
    /// A JUnit XML report: one test case per resource with problems (a
    /// failure per error, system-out for warnings), or one passing case.
    Junit,
}

/// How many problems fail the check.
pub fn errors(problems: &[Problem]) -> usize {
    problems.iter().filter(|p| p.severity == Severity::Error).count()
}

/// The report of `problems` in `format` (standard output's part).
pub fn render(problems: &[Problem], format: Format) -> String {
    match format {
        Format::Text => {
            let mut out = String::new();
            for p in problems {
                let _ = writeln!(out, "{p}");
            }
            if problems.is_empty() {
                out.push_str("ok: no problems found\n");
            }
            out
        }
        Format::Json => {
            let list: Vec<_> = problems
                .iter()
                .map(|p| {
                    json!({
                        "file": p.file.display().to_string(),
                        "resource": p.resource,
                        "severity": if p.severity == Severity::Error { "error" } else { "warning" },
                        "message": p.message,
                    })
                })
                .collect();
            let errors = errors(problems);
            let report = json!({"errors": errors, "warnings": problems.len() - errors, "problems": list});
            format!("{}\n", serde_json::to_string_pretty(&report).expect("JSON values serialize"))
        }
        Format::Junit => junit(problems),
    }
}

fn junit(problems: &[Problem]) -> String {
    let mut cases: Vec<(String, Vec<&Problem>)> = Vec::new();
    for p in problems {
        let name = format!("{}: {}", p.file.display(), p.resource);
        match cases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(p),
            None => cases.push((name, vec![p])),
        }
    }
    let failures = cases.iter().filter(|(_, ps)| ps.iter().any(|p| p.severity == Severity::Error)).count();
    let total = cases.len().max(1);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"authgate check\" tests=\"{total}\" failures=\"{failures}\">\n  <testsuite name=\"authgate check\" tests=\"{total}\" failures=\"{failures}\">"
    );
    if cases.is_empty() {
        out.push_str("    <testcase classname=\"authgate check\" name=\"all manifests\"/>\n");
    }
    for (name, ps) in &cases {
        let _ = writeln!(out, "    <testcase classname=\"authgate check\" name=\"{}\">", escape(name));
        for p in ps.iter().filter(|p| p.severity == Severity::Error) {
            let _ = writeln!(out, "      <failure message=\"{0}\">{0}</failure>", escape(&p.message));
        }
        let warnings: Vec<&str> =
            ps.iter().filter(|p| p.severity == Severity::Warning).map(|p| p.message.as_str()).collect();
        if !warnings.is_empty() {
            let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&warnings.join("\n")));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// XML text and attribute escaping; control characters XML cannot carry
/// become spaces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn problem(resource: &str, message: &str, severity: Severity) -> Problem {
        Problem { file: PathBuf::from("a.yaml"), resource: resource.into(), message: message.into(), severity }
    }

    #[test]
    fn json_counts_errors_and_warnings() {
        let ps = [problem("AuthPolicy ns/p", "bad", Severity::Error), problem("x", "w", Severity::Warning)];
        let v: serde_json::Value = serde_json::from_str(&render(&ps, Format::Json)).unwrap();
        assert_eq!((v["errors"].as_u64(), v["warnings"].as_u64()), (Some(1), Some(1)));
        assert_eq!(v["problems"][0]["severity"], "error");
    }

    #[test]
    fn junit_has_a_failure_per_error_and_escapes_everything() {
        let ps = [problem("AuthPolicy ns/<p>", "unknown field \"spec.sesion\" & more", Severity::Error)];
        let xml = render(&ps, Format::Junit);
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("name=\"a.yaml: AuthPolicy ns/&lt;p&gt;\""), "{xml}");
        assert!(xml.contains("unknown field &quot;spec.sesion&quot; &amp; more"), "{xml}");
        let clean = render(&[], Format::Junit);
        assert!(clean.contains("failures=\"0\"") && clean.contains("<testcase"), "{clean}");
    }
}
