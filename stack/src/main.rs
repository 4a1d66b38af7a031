//! Runs all five services in one process on embedded defaults: a SQLite file under `DATA_DIR`
//! (default `data/`) and the in-process event bus. Set `AMQP_URL` and `DATABASE_URL` to use
//! RabbitMQ and PostgreSQL instead, and `STACK_SERVICES` (e.g. `emotion`) to run only some of
//! them, the others found through their URL variables. Stops cleanly on Ctrl-C or SIGTERM.

fn main() -> anyhow::Result<()> {
    emotion_service::one_kernel_thread_per_frame();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

use iv_stack::Service;

async fn run() -> anyhow::Result<()> {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let telemetry = iv_platform::telemetry::init(Service::trace_name(&Service::selected(&env)?));
    let stack = iv_stack::Stack::start(env, None).await?;
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
        println!("play an interview:  cargo run -p iv-stack --bin candidate-sim");
    }
    iv_platform::shutdown::signal().await;
    stack.stop().await;
    telemetry.shutdown().await;
    Ok(())
}
