//! Responses by status code: a counter per common code, created at
//! startup, and one per class (`4xx`) for the rest, so counting is an
//! array index and an atomic add, never a lookup under a lock.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The codes with a series of their own.
const CODES: [u16; 22] =
    [200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 413, 429, 500, 502, 503, 504];
/// The rest, by class.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Labels of the response counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// The status code, or its class for uncommon codes.
    pub code: String,
}

/// See the module docs.
#[derive(Debug)]
pub struct ResponseCodes {
    codes: [Counter; 22],
    classes: [Counter; 5],
}

impl ResponseCodes {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = Family::<CodeLabels, Counter>::default();
        let get = |code: String| family.get_or_create_owned(&CodeLabels { code });
        let out = Self { codes: CODES.map(|c| get(c.to_string())), classes: CLASSES.map(|c| get(c.to_owned())) };
        registry.register("responses", "Responses of the public port by status code", family);
        out
    }

    /// Counts one response.
    pub fn count(&self, status: http::StatusCode) {
        let code = status.as_u16();
        match CODES.binary_search(&code) {
            Ok(i) => self.codes[i].inc(),
            Err(_) => self.classes[usize::from((code / 100).clamp(1, 5) - 1)].inc(),
        };
    }
}
