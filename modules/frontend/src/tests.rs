//! Actor-message tests: the frontend module with every module it calls
//! started for real on a fresh data directory; its service says where the
//! shop listens, and the shop answers there.

use runtime::{Module, ServiceRef, ServiceRegistry, StartError, start_alone};
use storage::testing::TempDir;

use crate::api::{Frontend, GetStatus};
use crate::{FrontendConfig, FrontendModule};

async fn started<M: Module>(config: M::Config, registry: &mut ServiceRegistry, dir: &TempDir) {
    let service = start_alone::<M>(config, registry.clone(), dir.path())
        .await
        .unwrap();
    registry.insert(service);
}

/// Every module the frontend calls, started in `dir`.
async fn dependencies(dir: &TempDir) -> ServiceRegistry {
    let mut registry = ServiceRegistry::new();
    started::<catalog::CatalogModule>(Default::default(), &mut registry, dir).await;
    started::<currency::CurrencyModule>(Default::default(), &mut registry, dir).await;
    started::<cart::CartModule>(Default::default(), &mut registry, dir).await;
    started::<recommendation::RecommendationModule>(Default::default(), &mut registry, dir).await;
    started::<shipping::ShippingModule>(Default::default(), &mut registry, dir).await;
    started::<payment::PaymentModule>(Default::default(), &mut registry, dir).await;
    started::<email::EmailModule>(Default::default(), &mut registry, dir).await;
    started::<orders::OrdersModule>(Default::default(), &mut registry, dir).await;
    started::<ads::AdsModule>(Default::default(), &mut registry, dir).await;
    started::<auth::AuthModule>(Default::default(), &mut registry, dir).await;
    started::<checkout::CheckoutModule>(Default::default(), &mut registry, dir).await;
    registry
}

fn listening_on(listen: &str) -> FrontendConfig {
    FrontendConfig {
        listen: listen.to_owned(),
        ..FrontendConfig::default()
    }
}

async fn frontend(
    config: FrontendConfig,
    dir: &TempDir,
) -> Result<ServiceRef<Frontend>, StartError> {
    start_alone::<FrontendModule>(config, dependencies(dir).await, dir.path()).await
}

#[actix_rt::test]
async fn the_service_says_where_the_shop_answers() {
    let dir = TempDir::new("frontend");
    let frontend = frontend(listening_on("127.0.0.1:0"), &dir).await.unwrap();

    let status = frontend.call(GetStatus {}).await.unwrap().unwrap();

    assert_ne!(status.address, "127.0.0.1:0", "the real port is reported");
    assert_eq!(status.url, format!("http://{}", status.address));
    let mut health = awc::Client::new()
        .get(format!("{}/_healthz", status.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.body().await.unwrap(), "ok");
}

#[actix_rt::test]
async fn a_bad_or_taken_address_is_a_start_error_that_says_what_to_do() {
    let dir = TempDir::new("frontend");
    let error = frontend(listening_on("port 8080"), &dir).await.unwrap_err();
    assert!(matches!(error, StartError::Config(_)), "{error}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let error = frontend(listening_on(&address), &dir).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&format!("cannot listen on {address}")),
        "{text}"
    );
    assert!(text.contains("[modules.frontend] listen"), "{text}");

    let none = FrontendConfig {
        workers: 0,
        ..listening_on("127.0.0.1:0")
    };
    assert!(matches!(
        frontend(none, &dir).await,
        Err(StartError::Config(_))
    ));
}
