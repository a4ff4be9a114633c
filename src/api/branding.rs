//! `spec.branding` of an AuthPolicy: how the gateway's own pages (sign-in,
//! access denied, signed out) present the service.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How the sign-in, access-denied and signed-out pages present this
/// service. Every value is shown as plain text; nothing is interpreted as
/// HTML. Changes reach running gateways without restarting them.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    /// Name of the service, shown as the pages' heading ("Grafana").
    /// Defaults to the policy's name.
    #[schemars(length(min = 1, max = 64))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,

    /// An https:// URL of a logo image, shown above the title. The pages'
    /// Content-Security-Policy allows images from exactly this URL's
    /// origin, and the image is fetched without a Referer.
    #[x_kube(validation = Rule::new("isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''").message("logoUrl must be an absolute https:// URL"))]
    #[schemars(length(max = 2048))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,

    /// A line of plain text at the bottom of every page (not HTML).
    #[schemars(length(max = 256))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,

    /// Whom to ask for access, shown on the access-denied page: a
    /// `mailto:` or `https://` URL (shown as a link) or plain text such as
    /// "#platform-help on Slack".
    #[schemars(length(max = 128))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}
