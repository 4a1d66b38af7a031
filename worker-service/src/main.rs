//! Runs the worker alone: RabbitMQ from `AMQP_URL` (the in-process bus without it, which only
//! makes sense inside the one-process stack).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let env = iv_platform::config::ProcessEnv;
    let config = worker_service::Config::from_env(&env)?;
    if iv_platform::config::Env::new(&env)
        .optional("AMQP_URL")
        .is_none()
    {
        tracing::warn!("AMQP_URL is not set: the worker only sees events of this process");
    }
    let bus = iv_platform::bus::EventBus::from_env(&iv_platform::config::Env::new(&env)).await?;
    worker_service::Application::build(config, bus)
        .await?
        .run_until(iv_platform::shutdown::signal())
        .await?;
    Ok(())
}
