//! What the worker asks of the interview service over HTTP: sweeping expired interviews, and
//! writing audit entries for the people it acted for. Each request asserts an identity with
//! the service credential, as every call between services does.

use http::Method;
use iv_platform::auth::{IDENTITY_HEADER, Principal, ServiceCredential};
use iv_platform::client::{HttpClient, HttpResponse};
use iv_platform::discovery::Instances;
use serde_json::Value;

use crate::error::WorkerError;

#[derive(Clone)]
pub struct InterviewClient {
    pub instances: Instances,
    pub credential: ServiceCredential,
    pub http: HttpClient,
}

impl InterviewClient {
    /// POSTs `body` to `path` on one of the interview service's instances, acting for `who`;
    /// an answer other than 2xx is an error with its status and body.
    pub async fn post(
        &self,
        path: &str,
        who: &Principal,
        body: &Value,
    ) -> Result<HttpResponse, WorkerError> {
        let base = self
            .instances
            .pick()
            .ok_or(WorkerError::NoInstance("interview-service"))?;
        let assertion = self.credential.assert(who);
        let resp = self
            .http
            .send(
                Method::POST,
                &format!("{base}{path}"),
                Some("application/json"),
                serde_json::to_vec(body).unwrap_or_default(),
                &[(IDENTITY_HEADER, &assertion)],
            )
            .await
            .map_err(WorkerError::Interview)?;
        if !resp.status.is_success() {
            return Err(WorkerError::InterviewRefused {
                status: resp.status.as_u16(),
                body: String::from_utf8_lossy(&resp.body).into_owned(),
            });
        }
        Ok(resp)
    }

    /// The worker acting on its own account.
    pub fn itself(&self) -> Principal {
        Principal::service(self.credential.service())
    }
}
