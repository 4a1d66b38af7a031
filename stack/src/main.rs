//! Runs all five services in one process on embedded defaults: a SQLite file under `DATA_DIR`
//! (default `data/`) and the in-process event bus. Set `AMQP_URL` and `DATABASE_URL` to use
//! RabbitMQ and PostgreSQL instead. Stops cleanly on Ctrl-C or SIGTERM.

fn main() -> anyhow::Result<()> {
    emotion_service::one_kernel_thread_per_frame();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let stack = iv_stack::Stack::start(env, None).await?;
    let a = stack.addresses;
    println!("interview backend running ({} event bus)", stack.bus.kind());
    println!("  gateway            http://{}  <- start here", a.gateway);
    println!("  interview-service  http://{}", a.interview);
    println!("  emotion-service    http://{}  (REST and gRPC)", a.emotion);
    println!("  scoring-service    http://{}  (REST and gRPC)", a.scoring);
    println!(
        "  worker-service     http://{}  (health, metrics)",
        a.worker
    );
    println!("play an interview:  cargo run -p iv-stack --bin candidate-sim");
    iv_platform::shutdown::signal().await;
    stack.stop().await;
    Ok(())
}
