//! Runs the interview service alone: RabbitMQ from `AMQP_URL` (the in-process bus without it).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    iv_platform::telemetry::init();
    let env = iv_platform::config::ProcessEnv;
    let config = interview_service::Config::from_env(&env)?;
    let bus = iv_platform::bus::EventBus::from_env(&iv_platform::config::Env::new(&env)).await?;
    interview_service::Application::build(config, bus)
        .await?
        .run_until(iv_platform::shutdown::signal())
        .await?;
    Ok(())
}
