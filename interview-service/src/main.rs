//! Runs the interview service alone: RabbitMQ from `AMQP_URL` (the in-process bus without it).

use iv_platform::bus::EventBus;
use iv_platform::config::{Env, ProcessEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = iv_platform::telemetry::init(interview_service::SERVICE.name);
    let config = interview_service::Config::from_env(&ProcessEnv)?;
    let bus = EventBus::from_env(&Env::new(&ProcessEnv)).await?;
    interview_service::build(config, bus).await?.run().await?;
    telemetry.shutdown().await;
    Ok(())
}
