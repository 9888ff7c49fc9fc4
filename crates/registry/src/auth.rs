//! Registry authentication: a `401` carries a `WWW-Authenticate` challenge;
//! a `Bearer` one names a token service (`realm`), which answers a
//! `GET realm?scope=…&service=…` with a token to send as
//! `Authorization: Bearer`.

use std::collections::HashMap;

/// A parsed `WWW-Authenticate` challenge: `Bearer realm="…",service="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercase (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, their names lowercase, quotes removed.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// Parses one challenge; `None` when its parameters are malformed (a
    /// name without `=`, an unterminated quote).
    ///
    /// ```
    /// use corral_registry::Challenge;
    /// let c = Challenge::parse(r#"Bearer realm="http://h/token",service="corral",scope="repository:a/b:pull,push""#).unwrap();
    /// assert_eq!(c.scope(), Some("repository:a/b:pull,push"));
    /// assert_eq!(Challenge::parse("Basic").unwrap().scheme, "basic");
    /// assert!(Challenge::parse(r#"Bearer realm="open"#).is_none());
    /// ```
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = HashMap::new();
        let mut s = rest.trim();
        while !s.is_empty() {
            let (name, after) = s.split_once('=')?;
            let after = after.trim_start();
            let (value, remaining) = match after.strip_prefix('"') {
                Some(q) => {
                    let end = q.find('"')?;
                    (&q[..end], &q[end + 1..])
                }
                None => {
                    let end = after.find(',').unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            params.insert(name.trim().to_ascii_lowercase(), value.to_string());
            s = remaining.trim_start_matches([',', ' ']);
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    /// A `Bearer` challenge that names its token service.
    pub fn parse_bearer(header: &str) -> Option<Challenge> {
        Challenge::parse(header).filter(|c| c.scheme == "bearer" && c.realm().is_some())
    }

    pub fn realm(&self) -> Option<&str> {
        self.params.get("realm").map(String::as_str)
    }

    pub fn service(&self) -> Option<&str> {
        self.params.get("service").map(String::as_str)
    }

    pub fn scope(&self) -> Option<&str> {
        self.params.get("scope").map(String::as_str)
    }

    /// The token request for `scope` (`repository:NAME:pull`), without
    /// credentials: whether to send them to the realm is the caller's
    /// policy. `None` without a realm.
    pub fn token_request(
        &self,
        http: &reqwest::Client,
        scope: &str,
    ) -> Option<reqwest::RequestBuilder> {
        let mut req = http.get(self.realm()?).query(&[("scope", scope)]);
        if let Some(s) = self.service() {
            req = req.query(&[("service", s)]);
        }
        Some(req)
    }
}

/// A token service's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    /// Seconds the token is valid for, when the service says.
    pub expires_in: Option<u64>,
}

impl Token {
    /// The token in a token service's JSON answer (`token`, or OAuth's
    /// `access_token`); `None` when there is none or it is empty.
    ///
    /// ```
    /// use corral_registry::Token;
    /// let t = Token::from_json(&serde_json::json!({"access_token": "t", "expires_in": 300})).unwrap();
    /// assert_eq!((t.token.as_str(), t.expires_in), ("t", Some(300)));
    /// assert!(Token::from_json(&serde_json::json!({"token": ""})).is_none());
    /// ```
    pub fn from_json(body: &serde_json::Value) -> Option<Token> {
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .filter(|t| !t.is_empty())?;
        Some(Token {
            token: token.to_string(),
            expires_in: body["expires_in"].as_u64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.realm(), Some("https://auth.example/token"));
        assert_eq!(c.service(), Some("registry.example"));
        assert_eq!(c.scope(), Some("repository:a/b:pull,push"));
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.realm(), Some("Registry Realm"));
        assert!(Challenge::parse_bearer(r#"Basic realm="x""#).is_none());
        assert!(Challenge::parse_bearer(r#"Bearer service="x""#).is_none());
    }

    #[test]
    fn bearer_challenges_as_signing_reads_them() {
        // Unquoted values, spaces after commas, a scope with a comma inside
        // its quotes, and the scheme in any case.
        let c = Challenge::parse_bearer(
            r#"bearer realm="https://auth.example/token", service=registry.example,scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            (c.realm(), c.service(), c.scope()),
            (
                Some("https://auth.example/token"),
                Some("registry.example"),
                Some("repository:a/b:pull,push")
            )
        );
        let c = Challenge::parse_bearer(r#"Bearer realm="http://h/token""#).unwrap();
        assert_eq!((c.service(), c.scope()), (None, None));
        assert!(Challenge::parse_bearer(r#"Bearer service="x""#).is_none());
        assert!(Challenge::parse_bearer("Bearer").is_none());
    }

    #[test]
    fn challenges_as_the_mirror_reads_them() {
        let c = Challenge::parse(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#)
            .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
    }

    #[test]
    fn unquoted_values_spaces_and_case() {
        let c = Challenge::parse("bearer Realm = http://h/t , service=s").unwrap();
        assert_eq!(c.realm(), Some("http://h/t "));
        assert_eq!(c.service(), Some("s"));
        let c = Challenge::parse(r#"Bearer realm="a,b", scope=x"#).unwrap();
        assert_eq!(c.realm(), Some("a,b"));
        assert_eq!(c.scope(), Some("x"));
        assert!(Challenge::parse("Bearer realm").is_none());
    }

    #[test]
    fn the_token_request_carries_scope_and_service() {
        let c =
            Challenge::parse(r#"Bearer realm="http://127.0.0.1:1/token",service="svc""#).unwrap();
        let req = c
            .token_request(&reqwest::Client::new(), "repository:a:pull")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            req.url().as_str(),
            "http://127.0.0.1:1/token?scope=repository%3Aa%3Apull&service=svc"
        );
    }
}
