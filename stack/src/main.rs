//! Runs all five services in one process on embedded defaults: a SQLite file under `DATA_DIR`
//! (default `data/`) and the in-process event bus. Set `AMQP_URL` and `DATABASE_URL` to use
//! RabbitMQ and PostgreSQL instead, and `STACK_SERVICES` (e.g. `emotion`) to run only some of
//! them, the others found through their URL variables. Stops cleanly on Ctrl-C or SIGTERM.
//!
//! `stack mint-token --role admin|recruiter [--org ID] [--subject NAME] [--hours N]` prints a
//! token of the backend's own issuer (signing key under `DATA_DIR`) instead;
//! `stack mint-token --service NAME` an identity assertion of that service on its own account
//! (valid minutes, signed with the service credential), for calling a service without the
//! gateway (gRPC integration tests, benchmarks); `--assert` with a role, the assertion the
//! gateway would send for that member (a benchmark's direct calls then do a member's work).

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("mint-token") {
        return mint_token(&args[1..]);
    }
    emotion_service::prepare_for_models();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

use iv_platform::auth::{OrgId, Principal, Role};
use iv_stack::{Service, tokens};

fn mint_token(args: &[String]) -> anyhow::Result<()> {
    const USAGE: &str = "usage: stack mint-token --role admin|recruiter [--org ID] [--subject NAME] [--hours N] [--assert]\n       stack mint-token --service NAME";
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    if let [flag, name] = args
        && flag == "--service"
    {
        println!("{}", tokens::service_assertion(&env, name)?);
        return Ok(());
    }
    let assert = args.iter().any(|a| a == "--assert");
    let (mut role, mut org, mut subject) = (None, tokens::DEFAULT_ORG.to_string(), None);
    let mut ttl = tokens::member_ttl(&env)?;
    let mut hours_given = false;
    let mut it = args.iter().filter(|a| *a != "--assert");
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
        match flag.as_str() {
            "--role" => role = Some(value.parse::<Role>()?),
            "--org" => org = value.clone(),
            "--subject" => subject = Some(value.clone()),
            "--hours" => {
                ttl = std::time::Duration::from_secs(value.parse::<u64>()? * 3600);
                hours_given = true;
            }
            _ => anyhow::bail!("{USAGE}"),
        }
    }
    let role = role.ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    anyhow::ensure!(
        role.is_member(),
        "only admin and recruiter tokens are minted here; candidates get theirs with an invitation"
    );
    anyhow::ensure!(
        !(assert && hours_given),
        "--assert and --hours do not go together: an assertion lives as long as the service \
         credential allows, whatever is asked"
    );
    let subject = subject.unwrap_or_else(|| role.as_str().to_string());
    let member = Principal::member(subject, role, OrgId(org));
    let token = if assert {
        tokens::assertion_for(&env, &member)?
    } else {
        tokens::mint(&env, &member, ttl)?
    };
    println!("{token}");
    Ok(())
}

async fn run() -> anyhow::Result<()> {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let telemetry = iv_platform::telemetry::init(Service::trace_name(&Service::selected(&env)?));
    let stack = iv_stack::Stack::start(env.clone(), None).await?;
    let a = stack.addresses;
    println!("interview backend running ({} event bus)", stack.bus.kind());
    for service in &stack.services {
        // One line per service, "<name> http://<addr>": scripts and tests read these.
        let (addr, what) = match service {
            Service::Gateway => (a.gateway, "<- start here"),
            Service::Interview => (a.interview, ""),
            Service::Emotion => (a.emotion, "(REST and gRPC)"),
            Service::Scoring => (a.scoring, "(REST and gRPC)"),
            Service::Worker => (a.worker, "(health, metrics)"),
        };
        println!("  {:<10} http://{addr}  {what}", service.name());
    }
    if stack.services.contains(&Service::Gateway) {
        // The embedded default has no identity provider: the first admin signs in with a
        // short-lived token of the backend's own key (also `Authorization: Bearer` on the API).
        let token = tokens::mint(&env, &tokens::first_admin(), tokens::member_ttl(&env)?)?;
        println!(
            "pages: http://{}/  (candidates open their invitation link; members sign in below)",
            a.gateway
        );
        println!("admin sign-in: http://{}/?token={token}", a.gateway);
        println!(
            "API description (OpenAPI 3.1): http://{}{}",
            a.gateway,
            gateway::openapi::PATH
        );
        println!("play an interview:  cargo run -p iv-stack --bin candidate-sim");
    }
    iv_platform::shutdown::signal().await;
    stack.stop().await;
    telemetry.shutdown().await;
    Ok(())
}
