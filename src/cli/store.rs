//! Where `authgate login` keeps tokens: `$XDG_CONFIG_HOME/authgate/tokens.json`
//! (else `~/.config/authgate/tokens.json`), one entry per gateway origin.
//! The directory is created mode 0700 and the file written mode 0600
//! (atomically: a temporary file renamed over it), since the tokens act
//! as the user.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CliError;

/// One stored token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The device token.
    pub access_token: String,
    /// Unix seconds after which the gateway refuses it.
    pub expires_at: u64,
}

/// The token file's content.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct TokenFile {
    /// By origin (`https://host[:port]`).
    pub tokens: BTreeMap<String, Stored>,
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The origin of a gateway URL: what tokens are keyed by.
pub fn origin(url: &str) -> Result<String, CliError> {
    let parsed = url::Url::parse(url).map_err(|_| CliError::BadUrl(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(CliError::BadUrl(url.to_owned()));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// The token file's path.
pub fn path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty()).ok_or(CliError::NoConfigDir)?)
            .join(".config"),
    };
    Ok(base.join("authgate").join("tokens.json"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io { path: path.to_owned(), source }
}

impl TokenFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        match std::fs::read(path) {
            Ok(raw) => serde_json::from_slice(&raw)
                .map_err(|e| CliError::Io { path: path.to_owned(), source: std::io::Error::other(e) }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Writes to `path` (dir 0700, file 0600).
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let dir = path.parent().expect("the token file has a directory");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        let tmp = dir.join(format!(".tokens.json.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(&serde_json::to_vec_pretty(self).expect("tokens serialize")).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }

    /// The token of `origin`, unless it has expired at `now`.
    pub fn valid(&self, origin: &str, now: u64) -> Option<&str> {
        self.tokens.get(origin).filter(|t| now < t.expires_at).map(|t| t.access_token.as_str())
    }

    /// Stores a token for `origin`.
    pub fn put(&mut self, origin: &str, stored: Stored) {
        self.tokens.insert(origin.to_owned(), stored);
    }

    /// Forgets `origin`'s token; whether there was one.
    pub fn remove(&mut self, origin: &str) -> bool {
        self.tokens.remove(origin).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_keyed_by_origin_and_written_private() {
        assert_eq!(origin("https://grafana.example.com/app/").unwrap(), "https://grafana.example.com");
        assert_eq!(origin("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(origin("ftp://x").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authgate").join("tokens.json");
        let mut f = TokenFile::default();
        f.put("https://a", Stored { access_token: "agd_x".into(), expires_at: 100 });
        f.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        let f = TokenFile::load(&path).unwrap();
        assert_eq!(f.valid("https://a", 99), Some("agd_x"));
        assert_eq!(f.valid("https://a", 100), None, "expired");
        assert_eq!(f.valid("https://b", 0), None);
    }
}
