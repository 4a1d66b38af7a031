//! The verifier against keys served by the test itself over HTTP, as a provider's JWKS is.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::claims::now_secs;
use super::*;
use crate::errors::ErrorClass;

const OWN: &str = "https://interviews.example";
const IDP: &str = "https://idp.acme.example";

/// A provider: an RS256 key, its JWKS served over HTTP, and how many times it was fetched.
struct Provider {
    kid: String,
    encoding: EncodingKey,
    jwks: Arc<std::sync::Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
    url: String,
}

fn rsa_key() -> (EncodingKey, serde_json::Value) {
    use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
    use aws_lc_rs::signature::KeyPair as _;
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("an RSA key");
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .expect("PKCS#8");
    let public: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
    let jwk = serde_json::json!({
        "kty": "RSA", "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
    });
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der.as_ref())
    );
    (
        EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
        jwk,
    )
}

fn jwk_set(mut jwk: serde_json::Value, kid: &str) -> JwkSet {
    jwk["kid"] = kid.into();
    serde_json::from_value(serde_json::json!({ "keys": [jwk] })).unwrap()
}

impl Provider {
    async fn start() -> Self {
        let (encoding, jwk) = rsa_key();
        let jwks = Arc::new(std::sync::Mutex::new(jwk_set(jwk, "rsa-1")));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), fetches.clone());
        let app = Router::new().route(
            "/jwks",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = serde_json::to_string(&*served.lock().unwrap()).unwrap();
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            kid: "rsa-1".into(),
            encoding,
            jwks,
            fetches,
            url,
        }
    }

    /// The provider rotates to a new key, which it serves from now on.
    fn rotate(&mut self) {
        let (encoding, jwk) = rsa_key();
        self.kid = "rsa-2".into();
        self.encoding = encoding;
        *self.jwks.lock().unwrap() = jwk_set(jwk, "rsa-2");
    }

    fn token(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn member_claims(roles: &[&str]) -> serde_json::Value {
    let now = now_secs();
    serde_json::json!({
        "iss": IDP, "sub": "alice@acme.example", "aud": "ai-interview",
        "exp": now + 600, "nbf": now, "iat": now, "roles": roles,
    })
}

fn setup(provider: &Provider, own: &SigningKey) -> Verifier {
    setup_with(provider, own, jwks::MIN_REFETCH)
}

fn setup_with(provider: &Provider, own: &SigningKey, min_refetch: Duration) -> Verifier {
    Verifier::new(vec![
        Issuer {
            issuer: OWN.into(),
            audience: AUDIENCE.into(),
            keys: Jwks::new(KeySource::Fixed(own.jwks())),
            trust: Trust::Own,
        },
        Issuer {
            issuer: IDP.into(),
            audience: AUDIENCE.into(),
            keys: Jwks::with_min_refetch(KeySource::Url(provider.url.clone()), min_refetch),
            trust: Trust::MembersOf(OrgId("acme".into())),
        },
    ])
}

fn acme() -> OrgId {
    OrgId("acme".into())
}

#[tokio::test]
async fn own_es256_and_provider_rs256_tokens_name_their_principal() {
    let provider = Provider::start().await;
    let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
    let verifier = setup(&provider, &own);

    let candidate = Principal::candidate("invite-1", acme(), "interview-1");
    let token = own.mint(&candidate, Duration::from_secs(600)).unwrap();
    assert_eq!(verifier.verify(&token).await.unwrap(), candidate);

    let token = provider.token(&member_claims(&["recruiter"]));
    let principal = verifier.verify(&token).await.unwrap();
    assert_eq!(
        principal,
        Principal::member("alice@acme.example", Role::Recruiter, acme())
    );
    let admin = provider.token(&member_claims(&["recruiter", "admin"]));
    assert_eq!(verifier.verify(&admin).await.unwrap().role, Role::Admin);
}

#[tokio::test]
async fn a_provider_cannot_grant_candidate_or_service_roles_or_another_org() {
    let provider = Provider::start().await;
    let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
    let verifier = setup(&provider, &own);
    for roles in [&["candidate"][..], &["service"], &[]] {
        let token = provider.token(&member_claims(roles));
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(err, AuthError::NoRole), "{roles:?}: {err}");
        assert_eq!(err.to_api().class, ErrorClass::Forbidden);
    }
    let mut claims = member_claims(&["admin"]);
    claims["org"] = "other".into();
    let token = provider.token(&claims);
    assert_eq!(
        verifier.verify(&token).await.unwrap().org,
        Some(acme()),
        "the organisation is the provider's, whatever the token claims"
    );
}

#[tokio::test]
async fn expiry_and_not_before_allow_only_the_clock_skew() {
    let provider = Provider::start().await;
    let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
    let verifier = setup(&provider, &own);
    let now = now_secs();
    let with = |exp: u64, nbf: u64| {
        let mut c = member_claims(&["recruiter"]);
        c["exp"] = exp.into();
        c["nbf"] = nbf.into();
        provider.token(&c)
    };
    let skew = verify::LEEWAY_SECS;
    assert!(
        verifier
            .verify(&with(now - skew / 2, now - 600))
            .await
            .is_ok(),
        "within the skew"
    );
    let expired = verifier
        .verify(&with(now - skew - 60, now - 600))
        .await
        .unwrap_err();
    assert!(expired.to_api().message.contains("expired"), "{expired}");
    let early = verifier
        .verify(&with(now + 600, now + skew + 60))
        .await
        .unwrap_err();
    assert!(early.to_api().message.contains("nbf"), "{early}");
}

#[tokio::test]
async fn forged_and_misaddressed_tokens_are_refused() {
    let provider = Provider::start().await;
    let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
    let verifier = setup(&provider, &own);
    let good = provider.token(&member_claims(&["admin"]));
    let refused = |token: String| {
        let verifier = verifier.clone();
        async move {
            let err = verifier.verify(&token).await.unwrap_err();
            let api = err.to_api();
            assert_eq!(api.class, ErrorClass::Unauthenticated, "{err}");
            api.message
        }
    };

    // A payload changed after signing.
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = member_claims(&["admin"]);
    claims["sub"] = "mallory".into();
    let forged_payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(refused(tampered).await.contains("bad signature"));

    // `alg: none`, no signature.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    refused(format!("{none_header}.{}.", parts[1])).await;

    // HS256 with the provider's public key as the secret (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let public_as_secret = serde_json::to_vec(&*provider.jwks.lock().unwrap()).unwrap();
    let confused = jsonwebtoken::encode(
        &header,
        &member_claims(&["admin"]),
        &EncodingKey::from_secret(&public_as_secret),
    )
    .unwrap();
    assert!(refused(confused).await.contains("algorithm"));

    let mut wrong_aud = member_claims(&["admin"]);
    wrong_aud["aud"] = "another-app".into();
    assert!(
        refused(provider.token(&wrong_aud))
            .await
            .contains("audience")
    );

    let mut wrong_iss = member_claims(&["admin"]);
    wrong_iss["iss"] = "https://evil.example".into();
    assert!(
        refused(provider.token(&wrong_iss))
            .await
            .contains("not trusted")
    );

    // The provider's key presented as the backend's own issuer: the key is not the issuer's.
    let mut as_own = member_claims(&["admin"]);
    as_own["iss"] = OWN.into();
    as_own["role"] = "admin".into();
    as_own["org"] = "acme".into();
    refused(provider.token(&as_own)).await;

    refused("not a token".into()).await;
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_unknown_ids_do_not_cause_fetch_storms() {
    let mut provider = Provider::start().await;
    let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
    // Long enough that generating the rotated RSA key (slow in a debug build on a loaded
    // machine) cannot outlast it.
    let interval = Duration::from_secs(3);
    let verifier = setup_with(&provider, &own, interval);
    let token = provider.token(&member_claims(&["recruiter"]));
    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    assert_eq!(
        provider.fetches.load(Ordering::SeqCst),
        1,
        "keys are cached"
    );

    // Within the refetch interval a token with a key id never seen is refused without a fetch.
    provider.rotate();
    let rotated = provider.token(&member_claims(&["recruiter"]));
    for _ in 0..5 {
        let err = verifier.verify(&rotated).await.unwrap_err();
        assert!(matches!(err, AuthError::UnknownKey(_)), "{err}");
    }
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 1);

    // Once the interval has passed, the unknown id makes the verifier fetch the set again.
    tokio::time::sleep(interval).await;
    verifier.verify(&rotated).await.unwrap();
    verifier.verify(&rotated).await.unwrap();
    assert_eq!(provider.fetches.load(Ordering::SeqCst), 2);
    let old = verifier.verify(&token).await.unwrap_err();
    assert!(
        matches!(old, AuthError::UnknownKey(_)),
        "the withdrawn key no longer works: {old}"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_not_unauthenticated() {
    let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);
    let verifier = Verifier::new(vec![Issuer {
        issuer: IDP.into(),
        audience: AUDIENCE.into(),
        keys: Jwks::new(KeySource::Url(dead)),
        trust: Trust::MembersOf(acme()),
    }]);
    let token = own
        .sign(&Claims {
            iss: IDP.into(),
            ..Claims::for_principal(
                IDP,
                AUDIENCE,
                &Principal::service("x"),
                Duration::from_secs(60),
            )
        })
        .unwrap();
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.to_api().class, ErrorClass::Unavailable, "{err}");
}

#[test]
fn identity_assertions_hold_only_with_the_shared_secret() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let gateway = ServiceCredential::new("gateway", secret).unwrap();
    let interview = ServiceCredential::new("interview-service", secret).unwrap();
    let principal = Principal::member("alice", Role::Recruiter, acme());
    let asserted = interview.verify(&gateway.assert(&principal)).unwrap();
    assert_eq!(asserted.by, "gateway");
    assert_eq!(asserted.principal, principal);

    let outsider =
        ServiceCredential::new("gateway", b"another secret of thirty-two bytes").unwrap();
    assert!(interview.verify(&outsider.assert(&principal)).is_err());
    assert!(ServiceCredential::new("short", b"too short").is_err());
}

#[test]
fn the_service_secret_is_created_once_and_shared() {
    let dir = std::env::temp_dir().join(format!("iv-secret-{}", uuid::Uuid::new_v4()));
    let path = internal::default_secret_path(&dir.display().to_string());
    let a = ServiceCredential::from_env_or_file("a", None, &path).unwrap();
    let b = ServiceCredential::from_env_or_file("b", None, &path).unwrap();
    let principal = Principal::service("a");
    assert!(b.verify(&a.assert(&principal)).is_ok());
    let from_env =
        ServiceCredential::from_env_or_file("c", Some("x".repeat(40).as_str()), &path).unwrap();
    assert!(
        from_env.verify(&a.assert(&principal)).is_err(),
        "the environment wins"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Whatever arrives as a token or an identity header, verification answers (never panics), and
/// a token altered anywhere is refused unless it still says exactly what was signed.
mod props {
    use proptest::prelude::*;

    use super::*;

    fn own_only(own: &SigningKey) -> Verifier {
        Verifier::new(vec![Issuer {
            issuer: OWN.into(),
            audience: AUDIENCE.into(),
            keys: Jwks::new(KeySource::Fixed(own.jwks())),
            trust: Trust::Own,
        }])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn tokens_from_anywhere_are_answered(
            garbage in ".{0,300}",
            dotted in "[A-Za-z0-9_\\-]{0,40}\\.[A-Za-z0-9_\\-]{0,60}\\.[A-Za-z0-9_\\-]{0,60}",
            at in any::<prop::sample::Index>(),
            with in any::<u8>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let own = SigningKey::generate(OWN, AUDIENCE).unwrap();
            let verifier = own_only(&own);
            let principal = Principal::member("ann", Role::Recruiter, acme());
            let token = own.mint(&principal, Duration::from_secs(600)).unwrap();
            rt.block_on(async {
                prop_assert!(verifier.verify(&garbage).await.is_err());
                prop_assert!(verifier.verify(&dotted).await.is_err());
                let mut altered = token.clone().into_bytes();
                let i = at.index(altered.len());
                altered[i] = with;
                if let Ok(altered) = String::from_utf8(altered)
                    && let Ok(p) = verifier.verify(&altered).await
                {
                    prop_assert_eq!(p, principal.clone(), "an altered token {} verified", altered);
                }
                Ok(())
            })?;
            let credential = ServiceCredential::new("gateway", &[7u8; 32]).unwrap();
            prop_assert!(credential.verify(&garbage).is_err());
            prop_assert!(credential.verify(&dotted).is_err());
        }
    }
}
