//! Actor-message tests: the recommendation actor with a fake catalog.

use std::collections::HashSet;

use actix::{Actor, ActorContext, Context, Handler};
use catalog::api::{
    Catalog, CatalogError, GetProduct, ListProducts, ListProductsResponse, Product, SearchProducts,
    SearchProductsResponse,
};
use currency::api::Money;
use runtime::{Call, CallError, ServiceRef, ServiceRegistry, start_alone};

use crate::api::{ListRecommendations, Recommendation, RecommendationError};
use crate::{RecommendationConfig, RecommendationModule};

/// A catalog with products `P0..Pn`, or one whose actor is gone.
struct FakeCatalog {
    count: usize,
}

impl Actor for FakeCatalog {
    type Context = Context<Self>;
}

fn product(i: usize) -> Product {
    Product {
        id: format!("P{i}"),
        name: format!("Product {i}"),
        description: String::new(),
        picture: String::new(),
        price_usd: Money::new("USD", 1, 0),
        categories: vec![],
    }
}

impl Handler<Call<ListProducts>> for FakeCatalog {
    type Result = Result<ListProductsResponse, CatalogError>;
    fn handle(&mut self, _: Call<ListProducts>, _: &mut Context<Self>) -> Self::Result {
        Ok(ListProductsResponse {
            products: (0..self.count).map(product).collect(),
        })
    }
}

impl Handler<Call<GetProduct>> for FakeCatalog {
    type Result = Result<Product, CatalogError>;
    fn handle(&mut self, call: Call<GetProduct>, _: &mut Context<Self>) -> Self::Result {
        Err(CatalogError::ProductNotFound {
            id: call.into_message().id,
        })
    }
}

impl Handler<Call<SearchProducts>> for FakeCatalog {
    type Result = Result<SearchProductsResponse, CatalogError>;
    fn handle(&mut self, _: Call<SearchProducts>, _: &mut Context<Self>) -> Self::Result {
        Ok(SearchProductsResponse { results: vec![] })
    }
}

async fn recommendation(catalog: Catalog) -> ServiceRef<Recommendation> {
    let services = ServiceRegistry::new().with(ServiceRef::local(catalog));
    start_alone::<RecommendationModule>(
        RecommendationConfig::default(),
        services,
        std::env::temp_dir(),
    )
    .await
    .unwrap()
}

fn ask(exclude: &[&str]) -> ListRecommendations {
    ListRecommendations {
        user_id: "u1".into(),
        product_ids: exclude.iter().map(|s| s.to_string()).collect(),
    }
}

#[actix_rt::test]
async fn recommends_five_distinct_products_not_excluded() {
    let service = recommendation(Catalog::start(FakeCatalog { count: 9 })).await;
    for _ in 0..20 {
        let reply = service.call(ask(&["P0", "P3"])).await.unwrap().unwrap();
        assert_eq!(reply.product_ids.len(), 5);
        let distinct: HashSet<&String> = reply.product_ids.iter().collect();
        assert_eq!(distinct.len(), 5);
        for id in &reply.product_ids {
            assert!(
                id != "P0" && id != "P3",
                "recommended an excluded product: {id}"
            );
            assert!(id.starts_with('P'), "{id} is not from the catalog");
        }
    }
}

#[actix_rt::test]
async fn recommends_what_is_left_when_fewer_than_five() {
    let service = recommendation(Catalog::start(FakeCatalog { count: 3 })).await;
    let reply = service.call(ask(&["P1"])).await.unwrap().unwrap();
    let mut ids = reply.product_ids;
    ids.sort();
    assert_eq!(ids, ["P0", "P2"]);
    let reply = service
        .call(ask(&["P0", "P1", "P2"]))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.product_ids.is_empty());
}

#[actix_rt::test]
async fn the_order_is_random() {
    let service = recommendation(Catalog::start(FakeCatalog { count: 9 })).await;
    let mut seen = HashSet::new();
    for _ in 0..50 {
        seen.insert(service.call(ask(&[])).await.unwrap().unwrap().product_ids);
    }
    assert!(seen.len() > 1, "fifty answers were all the same");
}

#[actix_rt::test]
async fn a_catalog_that_is_gone_is_a_typed_error() {
    // Start a fake catalog and stop it at once: its endpoints stay, its actor is gone.
    let catalog = Catalog::create(|ctx| {
        ctx.stop();
        FakeCatalog { count: 9 }
    });
    use runtime::Service as _;
    // The actor stops once it first runs: wait for that, so the call
    // finds it gone (not delivered) rather than going while it stops.
    let stopped = async {
        while catalog.is_running() {
            actix_rt::task::yield_now().await;
        }
    };
    actix_rt::time::timeout(std::time::Duration::from_secs(5), stopped)
        .await
        .expect("the fake catalog did not stop");
    let service = recommendation(catalog).await;
    let reply = service.call(ask(&[])).await.unwrap();
    match reply {
        Err(RecommendationError::CatalogUnavailable(error)) => {
            assert!(matches!(error, CallError::NotDelivered { .. }), "{error:?}");
            assert_eq!(error.service(), "catalog");
        }
        other => panic!("expected CatalogUnavailable, got {other:?}"),
    }
}

#[test]
fn max_results_0_is_refused_and_1_is_not() {
    use runtime::Module as _;
    let refused =
        crate::RecommendationModule::check(&RecommendationConfig { max_results: 0 }).unwrap_err();
    assert!(refused.to_string().contains("max_results = 0"), "{refused}");
    assert!(crate::RecommendationModule::check(&RecommendationConfig { max_results: 1 }).is_ok());
}

/// Empty fields left out, as proto3's JSON writes them, are read as empty.
#[test]
fn a_request_with_its_empty_fields_left_out_is_read() {
    let request: crate::api::ListRecommendations = serde_json::from_str("{}").unwrap();
    assert!(request.user_id.is_empty() && request.product_ids.is_empty());
}
