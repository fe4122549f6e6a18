//! Dutch first, English on request (cookie `lang`, else Accept-Language).

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ui {
    Nl,
    En,
}

impl Ui {
    pub fn t(self, nl: &str, en: &str) -> String {
        match self {
            Ui::Nl => nl.to_string(),
            Ui::En => en.to_string(),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Ui::Nl => "nl",
            Ui::En => "en",
        }
    }
    pub fn from_headers(h: &axum::http::HeaderMap) -> Ui {
        match crate::auth::cookie_value(h, "lang") {
            Some("en") => return Ui::En,
            Some("nl") => return Ui::Nl,
            _ => {}
        }
        // First language the browser prefers among ours; Dutch when nothing matches.
        let al = h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        for part in al.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if tag.starts_with("nl") {
                return Ui::Nl;
            }
            if tag.starts_with("en") {
                return Ui::En;
            }
        }
        Ui::Nl
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ui::from_headers(&parts.headers))
    }
}
